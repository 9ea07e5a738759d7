/**
 * The clean mode's own steps: exactly one sparse raw working copy of the source (downloaded, or converted into
 * from the source), cleaned in place; delivery then converts it out like any source. Each step is recorded as
 * done, so a resume neither copies nor cleans twice.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { ImageSource } from "../formats/types.js";
import { cleanWorkingCopy, type CleanSummary } from "./clean-step.js";
import { convertIntoFile } from "./deliver-image.js";
import type { JobRun } from "./job-run.js";
import { openSource } from "./open-source.js";
import { downloadToFile } from "./resumable-download.js";

/** `opened`: the source, already open in place (owned: closed here). */
export async function makeWorkingCopy(run: JobRun, opened?: ImageSource): Promise<string> {
  const src = run.state.source!;
  const work = join(run.workDir, "work.raw");
  run.state.files.work = work;
  if (run.state.done.includes("working-copy")) {
    await opened?.close();
    return work;
  }
  await run.save().catch(async (e: unknown) => {
    await opened?.close().catch(() => undefined);
    throw e;
  });
  const plan = run.state.plan!;
  if (plan.sourceAccess === "stream") {
    await opened?.close();
    await downloadToFile(run, work, true);
  } else {
    const source = opened ?? (await openSource(run));
    run.phase("convert", "start", `${src.format} → raw working copy`);
    try {
      await convertIntoFile(run, source, work, "raw", {});
    } finally {
      await source.close();
    }
    run.phase("convert", "end");
    if (run.state.files.download && run.state.files.download !== work) {
      await rm(run.state.files.download, { force: true });
      run.state.files.download = undefined;
    }
  }
  run.state.done.push("working-copy");
  await run.save();
  return work;
}

/** Cleans the working copy in place, once: undefined when an earlier run of the job already did. */
export async function cleanOnce(run: JobRun, work: string): Promise<CleanSummary | undefined> {
  if (run.state.done.includes("clean")) return undefined;
  const clean = run.request.clean!;
  run.phase("clean", "start", clean.profile ?? clean.operations ?? "defaults");
  // The job's clean phase shows the operations as steps; attaching the working copy is part of the phase.
  const forward = run.forward();
  const summary = await cleanWorkingCopy(work, {
    profile: clean.profile,
    operations: clean.operations,
    signal: run.signal,
    onEvent: forward && ((e) => e.event === "step" && forward(e)),
  });
  for (const w of summary.warnings) run.message(w, "warning");
  run.phase("clean", "end", `${summary.changes} change(s)`);
  // Saved with the step: a resume after it still registers the image with what the guest showed.
  run.state.guest = summary.guest;
  run.state.done.push("clean");
  await run.save();
  return summary;
}
