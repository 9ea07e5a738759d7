/**
 * Forgetting jobs: `jobs rm ID` and `jobs prune`. A job's record is what `resume` needs and what points at the
 * things it may have left in a cloud (a snapshot kept with --keep, a half-made image), so a job is removed only
 * when its process is gone, and one that still points at something in a cloud only when asked to forget it:
 * those stay in the cloud, named in the message so that they can be deleted there.
 */
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { UsageError } from "../util/errors.js";
import { removeLeftovers } from "./job-cleanup.js";
import { JobRun } from "./job-run.js";
import { currentStatus, jobDir, listJobs, loadJob, processAlive, type JobState } from "./job-state.js";

export interface JobRemoval {
  readonly job: string;
  readonly status: JobState["status"];
  /** What the job left in a cloud and its record pointed at: not deleted, only forgotten (with `force`). */
  readonly forgotten: readonly string[];
}

/** What the job's record points at in a cloud that is not cleaned up yet. */
export function cloudLeftovers(job: JobState): string[] {
  const left: string[] = [];
  if (job.snapshot && !job.snapshot.deleted) {
    left.push(
      `snapshot "${job.snapshot.name}"${job.snapshot.id ? ` (${job.snapshot.id})` : ""} in ${job.request.source.cloud}`,
    );
  }
  if (job.destination && !job.destination.completed && job.request.destination.kind === "cloud") {
    left.push(`unfinished image ${job.destination.id} in ${job.request.destination.cloud}`);
  }
  return left;
}

/**
 * Removes job `id`: its record, its temporary files and its work folder. Refused while its process runs, and
 * while it points at something in a cloud unless `force` (the message lists what, and says that `resume`
 * finishes or cleans it up).
 */
export async function removeJob(id: string, options: { force?: boolean } = {}): Promise<JobRemoval> {
  const job = await loadJob(id);
  if (job.status === "running" && processAlive(job.pid)) {
    throw new UsageError(`job ${id} is running (process ${job.pid}); stop it first`);
  }
  const left = cloudLeftovers(job);
  if (left.length > 0 && !options.force) {
    throw new UsageError(
      `job ${id} still points at ${left.join(" and ")}: \`chromogenic resume ${id}\` finishes or cleans it up; ` +
        "--force forgets the job anyway (those stay in the cloud)",
    );
  }
  for (const file of Object.values(job.files)) if (file) await rm(file, { force: true });
  if (job.request.workDir) await rm(join(resolve(job.request.workDir), job.id), { recursive: true, force: true });
  await rm(jobDir(id), { recursive: true, force: true });
  return { job: id, status: currentStatus(job), forgotten: left };
}

/**
 * Ends job `id` for good after it was cancelled (a service's cancel, which is never resumed): what it left in a
 * cloud — the half-made image, the temporary snapshot, boot images it stored — and its temporary files are
 * removed as after a failure, then the job is forgotten.
 */
export async function discardJob(id: string): Promise<void> {
  const job = await loadJob(id);
  const run = new JobRun(job, {});
  await run.prepareWorkDir();
  await removeLeftovers(run);
  await rm(run.workDir, { recursive: true, force: true });
  await rm(jobDir(id), { recursive: true, force: true });
}

/**
 * Removes the jobs that are over: those that succeeded, and with `failed` also the failed and interrupted ones
 * that point at nothing in a cloud. Running jobs and the rest are kept, each with the reason.
 */
export async function pruneJobs(options: { failed?: boolean } = {}): Promise<{
  removed: JobRemoval[];
  kept: { job: string; reason: string }[];
}> {
  const removed: JobRemoval[] = [];
  const kept: { job: string; reason: string }[] = [];
  for (const job of await listJobs()) {
    const status = currentStatus(job);
    const over = status === "done" || (options.failed && (status === "failed" || status === "interrupted"));
    if (!over) {
      kept.push({ job: job.id, reason: status === "running" ? "running" : `${status} (--failed removes it)` });
      continue;
    }
    const left = cloudLeftovers(job);
    if (left.length > 0) {
      kept.push({ job: job.id, reason: `points at ${left.join(" and ")}` });
      continue;
    }
    removed.push(await removeJob(job.id));
  }
  return { removed, kept };
}
