/**
 * What a job settles before any byte moves: its plan, made once from the stores' facts (job-plan.ts decides;
 * here the facts are gathered), and the space check of that plan against the filesystems' free space
 * (preflight.ts), redone on every run since a resume may find less space or more already written.
 */
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { ImageSource } from "../formats/types.js";
import { allocatedBytes, folderAllocatedBytes } from "./job-files.js";
import { keptPieceBytes, planTransfer, temporarySpace } from "./job-plan.js";
import { partCacheOf } from "./resumable-download.js";
import type { JobRun } from "./job-run.js";
import type { JobPlan } from "./job-state.js";
import { checkSpace, type SpaceNeed } from "./preflight.js";

export async function makePlan(run: JobRun): Promise<JobPlan> {
  const src = run.state.source!;
  const localPath = await run.source.localImagePath?.(src.id);
  const destinationCaps = run.destination ? await run.destination.capabilities() : undefined;
  return planTransfer({
    request: run.request,
    source: src,
    sourceLocalAllocated: localPath ? await allocatedBytes(localPath) : undefined,
    // Per image: a store that reads most images in place may have some it can only stream (an AMI's bundle).
    sourceRandomAccess: (await run.source.capabilities()).randomAccess && !src.sequentialOnly,
    destinationFormats: destinationCaps?.diskFormats,
    destinationLabel: run.destination?.label,
    workDir: run.workDir,
  });
}

/**
 * `source`, when given, is the source already open in place: the working copy, a temporary output and a file
 * destination are then sized by the guest data it holds. Otherwise the plan's estimate (the stored size) stands,
 * and a file output is checked again with the exact figure once its source is open (checkOutputSpace), still
 * before it is written.
 */
export async function preflight(run: JobRun, plan: JobPlan, source?: ImageSource): Promise<void> {
  // What earlier runs of this job already wrote counts as used, not needed.
  let existing = 0;
  for (const f of Object.values(run.state.files)) {
    if (f && f.startsWith(run.workDir)) existing += await allocatedBytes(f);
  }
  // An open source tells its guest data, which a working copy or a compact output holds: for a compressed
  // qcow2, many times the stored size the plan estimated with.
  if (source) run.sourceDataBytes = (await source.details()).allocatedBytes;
  // Parts kept by an earlier run are there already.
  existing += await folderAllocatedBytes(partCacheOf(run));
  const data = source ? (run.sourceDataBytes ?? source.virtualSize) : undefined;
  const src = run.state.source!;
  const temporary =
    data === undefined ? plan.temporaryBytes : temporarySpace(plan, src.size, data, keptPieceBytes(run.request, src));
  const needs: SpaceNeed[] = [{ path: run.workDir, bytes: temporary - existing, what: "temporary data" }];
  const dest = run.request.destination;
  if (dest.kind === "file") {
    await mkdir(dirname(resolve(dest.path)), { recursive: true });
    // A passthrough writes the stored bytes; a conversion writes the guest data.
    const bytes = plan.mode === "passthrough" ? run.state.source!.size : (data ?? run.state.source!.size);
    run.outputChecked = plan.mode === "passthrough" || source !== undefined;
    needs.push({ path: dirname(resolve(dest.path)), bytes, what: "the output" });
  }
  await checkSpace(needs);
}

/**
 * The guest data `source` holds, the most a converted output, a working copy or a compact temporary output
 * takes: qcow2 counts it in one pass over its L2 tables (a few Range requests for an image read in place), raw
 * from the filesystem's map; a source that cannot tell says its virtual size. An OVA's compressed VMDK holds
 * less, so this over-reserves for it, never under.
 */
async function guestDataBytes(source: ImageSource): Promise<number> {
  return (await source.details()).allocatedBytes ?? source.virtualSize;
}

/** The output's space, checked with the exact guest data before a byte of it is written. */
export async function checkOutputSpace(run: JobRun, source: ImageSource, out: string): Promise<void> {
  if (run.outputChecked) return;
  await checkSpace([{ path: dirname(out), bytes: await guestDataBytes(source), what: "the output" }]);
}
