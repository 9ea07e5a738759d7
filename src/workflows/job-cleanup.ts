/**
 * What a job removes when it ends: on success the temporary snapshot (unless kept) and the temporary files; after
 * a failure (not a cancellation, whose state `resume` needs) also a half-made destination image, and the state
 * forgets the source and plan so that a resume starts over instead of continuing from removed pieces.
 */
import { rm } from "node:fs/promises";
import type { JobRun } from "./job-run.js";
import { jobDir } from "./job-state.js";

/** Deletes the temporary snapshot (found by name if its id was never saved); true once it is gone. */
export async function deleteSnapshot(run: JobRun): Promise<boolean> {
  const snap = run.state.snapshot;
  if (!snap || snap.deleted) return !!snap?.deleted;
  const image = snap.id ? { id: snap.id } : await run.source.getImage(snap.name);
  if (image) await run.source.deleteImage(image.id);
  snap.deleted = true;
  await run.save();
  return true;
}

export async function removeTemporaryFiles(run: JobRun): Promise<void> {
  for (const f of Object.values(run.state.files)) if (f) await rm(f, { force: true });
  run.state.files = {};
  if (run.workDir !== jobDir(run.state.id)) await rm(run.workDir, { recursive: true, force: true });
  await run.save();
}

/** After a failure (not a cancellation): the temporary snapshot, a half-made destination image, temp files. */
export async function removeLeftovers(run: JobRun): Promise<void> {
  if (run.state.destination && !run.state.destination.completed && run.destination) {
    await run.destination.deleteImage(run.state.destination.id).catch(() => undefined);
    run.state.destination = undefined;
  }
  for (const id of Object.values(run.state.bootImages ?? {})) {
    if (id && run.destination) await run.destination.deleteImage(id).catch(() => undefined);
  }
  run.state.bootImages = undefined;
  if (run.state.snapshot && !run.state.snapshot.deleted) {
    await deleteSnapshot(run).catch(() => undefined);
  }
  run.state.snapshot = undefined;
  if (run.workDir) await removeTemporaryFiles(run).catch(() => undefined);
  run.state.done = [];
  run.state.bytes = { download: 0, upload: 0 };
  run.state.source = undefined;
  run.state.plan = undefined;
}
