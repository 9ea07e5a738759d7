/**
 * The service's worker across hosts: takes job ids from the BullMQ queue (bullmq-queue.ts), acquires each job
 * in the store and runs it through the runner callback (held-job.ts), then completes the BullMQ job.
 *
 * One lease, two locks kept in step: BullMQ's job lock (lockDuration, renewed by BullMQ every half of it) and
 * the store's lease (the same length, renewed every third of it by runHeldJob). A worker killed with kill -9
 * renews neither: its BullMQ lock runs out, BullMQ's stalled-job check (every half lease) puts the job back in
 * the queue, another worker takes it and acquires the store's job, whose lease ran out at the same time. Which
 * of the two runs out first does not matter: a worker that gets the BullMQ job while the store's lease still
 * runs puts it back, delayed by half a lease, until the lease ends or its holder finishes the job. The store
 * decides who runs a job; BullMQ only hands out the ids, so a job BullMQ hands out twice (a Redis restart, a
 * worker cut off from Redis longer than a lease) still runs once at a time, and never again once finished.
 *
 * A BullMQ job completes once its store job is finished (here, or by the worker that held it), so an
 * unfinished store job always has a BullMQ job that comes back to some worker.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { DelayedError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { connectRedis, DEFAULT_QUEUE_NAME, type BullmqConnectionOptions, type QueuedJobData } from "./bullmq-queue.js";
import { runHeldJob, type JobRunnerCallback } from "./held-job.js";
import type { JobStore } from "./job-store.js";
import { isFinished, type ServiceJob } from "./service-job.js";

/**
 * Runs a job this worker holds to its end, keeping the lease and recording the outcome itself; `stopping` aborts
 * when the worker closes (the runner may then release the job, unfinished, for another worker). The service's
 * job runner (runServiceJob) has this shape; `runHeldJob` makes one of a plain JobRunnerCallback.
 */
export type HeldJobRunner = (
  store: JobStore,
  job: ServiceJob,
  options: { readonly worker: string; readonly leaseMs: number; readonly stopping: AbortSignal },
) => Promise<unknown>;

export interface BullmqJobWorkerOptions extends BullmqConnectionOptions {
  readonly store: JobStore;
  /** What runs a job: a plain callback (held-job.ts keeps its lease and records its outcome) or a runner that does that itself. */
  readonly run: JobRunnerCallback | { readonly held: HeldJobRunner };
  /** This worker's name in the store (job.worker); default host/pid/random, unique per process. */
  readonly name?: string;
  /** Jobs run at once. */
  readonly concurrency?: number;
  /** The store lease and BullMQ's lockDuration, in ms: how long a dead worker's job waits for another. */
  readonly leaseMs?: number;
  /** The jobs this worker can run (its clouds, its space); others go back to the queue for another worker. */
  readonly accepts?: (job: ServiceJob) => boolean;
  /** Redis and store errors that the worker rides out (reconnecting, retrying). */
  readonly onError?: (error: unknown) => void;
}

/** A job this worker does not accept, or one whose store lease another worker still holds, comes back after this. */
const PUT_BACK_MS = 1000;

export class BullmqJobWorker {
  private constructor(
    readonly name: string,
    private readonly worker: Worker<QueuedJobData>,
    private readonly redis: Redis,
    private readonly stopping: AbortController,
  ) {}

  static async start(options: BullmqJobWorkerOptions): Promise<BullmqJobWorker> {
    const name = options.name ?? `${hostname()}/${process.pid}/${randomBytes(3).toString("hex")}`;
    const leaseMs = options.leaseMs ?? 30_000;
    const onError = options.onError ?? (() => {});
    const redis = connectRedis(options.redisUrl);
    redis.on("error", onError);
    const stopping = new AbortController();
    const run = options.run;
    const runHeld: HeldJobRunner =
      typeof run === "function"
        ? (store, job, { worker }) => runHeldJob({ store, job, worker, leaseMs, run, onError })
        : run.held;
    const running = new Set<string>();
    const process_ = (bullJob: Job<QueuedJobData>, token?: string) =>
      processQueuedJob(bullJob, token, {
        ...options,
        name,
        leaseMs,
        runHeld,
        stopping: stopping.signal,
        running,
      });
    const worker = new Worker<QueuedJobData>(options.queueName ?? DEFAULT_QUEUE_NAME, process_, {
      connection: redis,
      name,
      concurrency: options.concurrency ?? 1,
      lockDuration: leaseMs,
      stalledInterval: Math.max(500, Math.floor(leaseMs / 2)),
      // A stalled job is a job whose worker died: it is resumed, never failed for it. The store counts attempts.
      maxStalledCount: 1_000_000,
      drainDelay: 1,
    });
    worker.on("error", onError);
    await worker.waitUntilReady();
    return new BullmqJobWorker(name, worker, redis, stopping);
  }

  /**
   * Stops taking jobs, tells the running ones (`stopping`: a HeldJobRunner may release its job for another
   * worker; a plain callback runs to its end) and waits for them.
   */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.worker.close();
    this.redis.disconnect();
  }
}

interface ProcessOptions extends BullmqJobWorkerOptions {
  readonly name: string;
  readonly leaseMs: number;
  readonly runHeld: HeldJobRunner;
  readonly stopping: AbortSignal;
  /**
   * Ids this process runs now. Every run of the process holds the store lease under its one name, so the store
   * could not tell a second run of the same job here (BullMQ handing it out again after a lapsed lock) from the
   * first: that one is put back instead.
   */
  readonly running: Set<string>;
}

async function processQueuedJob(
  bullJob: Job<QueuedJobData>,
  token: string | undefined,
  options: ProcessOptions,
): Promise<string> {
  const { store, leaseMs } = options;
  const id = bullJob.data.id;
  const current = await store.get(id);
  if (!current || isFinished(current.state)) return "nothing to run";
  if (options.accepts && !options.accepts(current)) return putBack(bullJob, token, PUT_BACK_MS);
  if (options.running.has(id)) return putBack(bullJob, token, Math.min(PUT_BACK_MS, leaseMs / 2));
  options.running.add(id);
  try {
    return await runAcquired(bullJob, token, options);
  } finally {
    options.running.delete(id);
  }
}

async function runAcquired(
  bullJob: Job<QueuedJobData>,
  token: string | undefined,
  options: ProcessOptions,
): Promise<string> {
  const { store, name, leaseMs } = options;
  const id = bullJob.data.id;
  const job = await store.acquire(id, name, leaseMs);
  if (!job) {
    const now = await store.get(id);
    if (!now || isFinished(now.state)) return "nothing to run";
    // Held under a lease that still runs: its worker lives (and lost only BullMQ's lock), or died less than a
    // lease ago. Back in the queue until the lease ends or the job does.
    return putBack(bullJob, token, Math.min(PUT_BACK_MS, leaseMs / 2));
  }
  await options.runHeld(store, job, { worker: name, leaseMs, stopping: options.stopping });
  const after = await store.get(id);
  if (!after || isFinished(after.state)) return "finished";
  // Released by a stopping worker, or lost to another: back in the queue for whoever takes it next. (When the
  // lease was lost with BullMQ's lock, the other worker has this BullMQ job and moving it fails: nothing to do.)
  return putBack(bullJob, token, 0);
}

async function putBack(bullJob: Job<QueuedJobData>, token: string | undefined, delayMs: number): Promise<never> {
  await bullJob.moveToDelayed(Date.now() + delayMs, token);
  throw new DelayedError();
}
