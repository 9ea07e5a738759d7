/**
 * The source opened as an image the format engine reads, the way the plan says: in place (a local store's file,
 * or positional reads over HTTP Range), or else downloaded first into the work directory.
 */
import { join } from "node:path";
import { openImage } from "../formats/engine/open-image.js";
import type { ImageSource } from "../formats/types.js";
import type { JobRun } from "./job-run.js";
import type { JobPlan } from "./job-state.js";
import { downloadToFile } from "./resumable-download.js";
import { isPlainDisk } from "../formats/registry.js";

/** Whether this run converts from the source where it is stored (not a download, not a finished working copy). */
export function readsInPlaceNow(run: JobRun, plan: JobPlan): boolean {
  if (plan.mode === "passthrough") return false;
  if (plan.sourceAccess !== "local-file" && plan.sourceAccess !== "random-access") return false;
  return !(plan.mode === "clean" && run.state.done.includes("working-copy"));
}

/** The source as an image the format engine reads, per the plan (downloaded first when it cannot be read in place). */
export async function openSource(run: JobRun): Promise<ImageSource> {
  const src = run.state.source!;
  const plan = run.state.plan!;
  if (plan.sourceAccess === "random-access") {
    const input = await run.source.openImageInput!(src.id, { signal: run.signal, keep: !!run.request.keep });
    return (await openImage(input, { format: src.format })).source;
  }
  return (await openImage(await sourceFile(run), { format: src.format })).source;
}

/** The source as a file on this host: the local store's own (read in place), else downloaded into the work dir. */
export async function sourceFile(run: JobRun): Promise<string> {
  const src = run.state.source!;
  if (run.state.plan!.sourceAccess === "local-file") return (await run.source.localImagePath!(src.id))!;
  const path = join(run.workDir, `source.${src.format}`);
  await downloadToFile(run, path, isPlainDisk(src.format));
  return path;
}
