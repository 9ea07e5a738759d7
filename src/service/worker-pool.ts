/**
 * A host's workers: N slots, each claiming a job from the job store when it is free and running it
 * (job-runner.ts). The same pool runs inside `chromogenic serve` (embedded) and in `chromogenic worker` processes
 * on other hosts; nothing but the store is shared between them. A slot polls often while there is work and backs
 * off while there is none; it claims only what this host can do (the clouds it reaches, free work space:
 * worker-capacity.ts). Each slot claims under an id of its own — host, process and slot number — which the
 * store records as the job's worker.
 *
 * Stopping (SIGTERM) first stops claiming, then waits for the running jobs up to a deadline; the jobs still
 * running then are interrupted, their state saved, and their leases released, so that another worker resumes
 * them at once instead of after the lease runs out.
 */
import { hostname } from "node:os";
import { workflowStateDir } from "../workflows/job-state.js";
import type { JobStore } from "./job-store.js";
import { runServiceJob, type RunEnd } from "./job-runner.js";
import type { ServiceJob } from "./service-job.js";
import { freeBytes, reachesClouds } from "./worker-capacity.js";

export interface WorkerPoolOptions {
  /** Jobs run at once (the cores declared for this work); default 1. */
  readonly slots?: number;
  /** How long a job stays held without a renewal (renewed every third of it); default 30 s. */
  readonly leaseMs?: number;
  /** Wait between claims while jobs come; default 200 ms. */
  readonly pollMs?: number;
  /** The longest wait between claims while none come (the wait doubles up to it); default 2 s. */
  readonly idlePollMs?: number;
  /** The clouds this host reaches (worker-capacity.ts); undefined: all. */
  readonly clouds?: readonly string[];
  /** The folder whose file system must keep `minFreeBytes` free; default the state directory. */
  readonly workDir?: string;
  /** No job is claimed while less is free in `workDir`; default 1 GiB. */
  readonly minFreeBytes?: number;
  /** The host's name in worker ids; default the host name. */
  readonly host?: string;
  /** How often at most a job's progress summary is written; default 400 ms. */
  readonly progressIntervalMs?: number;
  /** Told what the pool does and what went wrong with the store (one line each). */
  readonly log?: (line: string) => void;
}

export interface WorkerPool {
  /** The slots' worker ids. */
  readonly workers: readonly string[];
  /** Jobs running now. */
  running(): number;
  /**
   * Stops claiming; waits for the running jobs up to `deadlineMs` (default: for ever), then interrupts the rest
   * and releases their leases. Resolves when every slot has ended.
   */
  stop(options?: { deadlineMs?: number }): Promise<void>;
}

const GiB = 2 ** 30;

/** Slots are numbered across the process's pools, so that two pools of one process never share a worker id. */
let slotsStarted = 0;

export function startWorkerPool(store: JobStore, options: WorkerPoolOptions = {}): WorkerPool {
  const slots = options.slots ?? 1;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollMs = options.pollMs ?? 200;
  const idlePollMs = Math.max(pollMs, options.idlePollMs ?? 2_000);
  const workDir = options.workDir ?? workflowStateDir();
  const minFree = options.minFreeBytes ?? GiB;
  const log = options.log ?? (() => undefined);
  const accepts = reachesClouds(options.clouds);
  const host = options.host ?? hostname();
  const workers = Array.from({ length: slots }, () => `${host}:${process.pid}:${++slotsStarted}`);

  // Aborted when claiming stops (wakes the idle slots), and when running jobs must stop (the deadline).
  const claiming = new AbortController();
  const interrupting = new AbortController();
  let busy = 0;
  let short = false;

  async function hasRoom(): Promise<boolean> {
    const free = await freeBytes(workDir).catch(() => 0);
    // Said once when it happens and once when it ends, not at every poll.
    if (short !== free < minFree) {
      short = free < minFree;
      log(short ? `not claiming: ${free} bytes free in ${workDir}, ${minFree} needed` : "claiming again");
    }
    return !short;
  }

  async function slot(worker: string): Promise<void> {
    let wait = pollMs;
    while (!claiming.signal.aborted) {
      let job: ServiceJob | undefined;
      try {
        if (await hasRoom()) job = await store.claim(worker, leaseMs, accepts);
      } catch (e) {
        log(`${worker}: claiming failed: ${(e as Error).message}`);
      }
      if (!job) {
        await sleep(wait, claiming.signal);
        wait = Math.min(wait * 2, idlePollMs);
        continue;
      }
      wait = pollMs;
      busy++;
      let end: RunEnd | undefined;
      try {
        log(`${worker}: job ${job.id} (${job.kind}), attempt ${job.attempts}`);
        end = await runServiceJob(store, job, {
          worker,
          leaseMs,
          stopping: interrupting.signal,
          progressIntervalMs: options.progressIntervalMs,
        });
      } catch (e) {
        // The store failed under the runner: the lease runs out and another worker takes the job over.
        log(`${worker}: job ${job.id}: ${(e as Error).message}`);
      } finally {
        busy--;
      }
      if (end) log(`${worker}: job ${job.id} ${end}`);
      if (claiming.signal.aborted) break;
      await sleep(pollMs, claiming.signal);
    }
  }

  const ended = Promise.all(workers.map(slot));
  return {
    workers,
    running: () => busy,
    async stop({ deadlineMs } = {}) {
      claiming.abort();
      if (deadlineMs !== undefined) {
        const timer = setTimeout(() => interrupting.abort(), deadlineMs);
        await ended;
        clearTimeout(timer);
      } else await ended;
    },
  };
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
