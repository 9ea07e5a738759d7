/**
 * What a worker declares it can take: which clouds it reaches (its clouds.yaml, eucarc or AWS profiles define
 * them, and its network reaches them), and how much free space its work folder must keep before it claims
 * another job. A job naming a cloud outside the list is left for a worker that reaches it; a file job (convert,
 * clean) names none. The library's own preflight still checks each job's space once its plan is known.
 */
import { statfs } from "node:fs/promises";
import { jobClouds } from "./job-spec.js";
import type { ServiceJob } from "./service-job.js";

/** The clouds a job reads from or writes to, by the names it gives them. */
/**
 * Whether a worker reaching `reachable` takes `job`: every cloud it names is in the list, by its name, or by a
 * prefix ending in `*` ("local:*" for every local store, "aws*" for every AWS region). No list: every cloud.
 */
export function reachesClouds(reachable: readonly string[] | undefined): (job: ServiceJob) => boolean {
  if (!reachable) return () => true;
  const matches = (cloud: string) =>
    reachable.some((entry) => (entry.endsWith("*") ? cloud.startsWith(entry.slice(0, -1)) : cloud === entry));
  return (job) => jobClouds(job.spec).every(matches);
}

/** Bytes free for an unprivileged writer in the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}
