/**
 * The service's queue across hosts: BullMQ on Redis, API side. The job store (PostgreSQL, or SQLite with one API
 * process) stays the record of truth: a job is submitted to the store first, then its id is queued, the BullMQ
 * job's id being the store job's id, so that queueing it again (a client's retry, the sweep below) never makes
 * a second BullMQ job. Workers (bullmq-worker.ts) take these ids and acquire the store's job.
 *
 * Redis refusing or away does not refuse a submission: the job is in the store, and `requeueUnfinished` (run by
 * `serve` at start and then periodically: `sweepEvery`) queues every unfinished store job that BullMQ lacks: after a Redis
 * that lost its data, or an enqueue that failed. Cancel marks the store job; a queued BullMQ job is also removed,
 * a running one stops when its worker sees the mark (held-job.ts).
 */
import { Queue, type JobsOptions } from "bullmq";
import { Redis } from "ioredis";
import { redactUrl } from "./connection-url.js";
import type { JobStore, SubmitRequest } from "./job-store.js";
import type { ServiceJob } from "./service-job.js";

export const DEFAULT_QUEUE_NAME = "chromogenic-jobs";

/** What a queued id carries: only the id; everything else is read from the store. */
export interface QueuedJobData {
  readonly id: string;
}

export interface BullmqConnectionOptions {
  /** redis://[:password@]host:port[/db] (rediss:// for TLS). */
  readonly redisUrl: string;
  /** The BullMQ queue; several services can share one Redis under other names. */
  readonly queueName?: string;
}

/**
 * A connection as BullMQ wants it. Workers need `maxRetriesPerRequest: null` (their blocking reads wait out a
 * Redis restart); the API side fails fast instead (`failFast`: a command waits through two reconnection tries,
 * a few seconds), because the store already holds the job and the sweep queues it later.
 */
export function connectRedis(url: string, options: { failFast?: boolean } = {}): Redis {
  let redis: Redis;
  try {
    redis = new Redis(url, {
      lazyConnect: false,
      ...(options.failFast ? { maxRetriesPerRequest: 2, connectTimeout: 5000 } : { maxRetriesPerRequest: null }),
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
  } catch (e) {
    throw new Error(`cannot use the Redis at ${redactUrl(url)}: ${(e as Error).message}`, { cause: e });
  }
  return redis;
}

/**
 * How long a finished BullMQ job is kept, for dedupe by id while a retry of the same submission may come (a
 * day), then dropped: the store keeps the job's record. Attempts: a processor throws only when the store cannot
 * be reached (a job's own failure is recorded in the store), so BullMQ retries it every few seconds for a while.
 */
export const QUEUED_JOB_OPTIONS: JobsOptions = {
  removeOnComplete: { age: 24 * 3600 },
  removeOnFail: { age: 7 * 24 * 3600 },
  attempts: 720,
  backoff: { type: "fixed", delay: 5000 },
};

export class BullmqJobQueue {
  private closed = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> = Promise.resolve();

  private constructor(
    private readonly queue: Queue<QueuedJobData>,
    private readonly redis: Redis,
    private readonly onError: (error: unknown) => void,
  ) {}

  static open(options: BullmqConnectionOptions & { onError?: (error: unknown) => void }): BullmqJobQueue {
    const redis = connectRedis(options.redisUrl, { failFast: true });
    const onError = options.onError ?? (() => {});
    redis.on("error", onError);
    const queue = new Queue<QueuedJobData>(options.queueName ?? DEFAULT_QUEUE_NAME, {
      connection: redis,
      skipWaitingForReady: true,
    });
    queue.on("error", onError);
    return new BullmqJobQueue(queue, redis, onError);
  }

  /** Queues a store job's id; queueing an id already queued (or running, or just finished) does nothing. */
  async enqueue(job: ServiceJob): Promise<void> {
    await this.queue.add(job.kind, { id: job.id }, { ...QUEUED_JOB_OPTIONS, jobId: job.id });
  }

  /**
   * Submits to the store, then queues. A failed enqueue is reported to onError, not thrown: the job is stored
   * and the sweep queues it. A retried submission (same idempotency key) queues its job again, which fixes a
   * first enqueue that failed.
   */
  async submit(store: JobStore, request: SubmitRequest): Promise<{ job: ServiceJob; created: boolean }> {
    const answer = await store.submit(request);
    if (answer.job.state === "queued") await this.enqueue(answer.job).catch(this.onError);
    return answer;
  }

  /** Marks the cancel in the store; a job that was still queued also leaves BullMQ. */
  async cancel(store: JobStore, id: string): Promise<ServiceJob | undefined> {
    const job = await store.requestCancel(id);
    // A BullMQ job a worker has locked is not removed: that worker acquires nothing (the job is cancelled) and
    // completes it.
    if (job?.state === "cancelled") await this.queue.remove(id).catch(this.onError);
    return job;
  }

  /**
   * Queues every unfinished store job that BullMQ has not got (or has as failed: retried). The safety net under
   * a Redis that lost data and a failed enqueue; cheap when nothing is missing (one lookup per unfinished job).
   * How many were queued.
   */
  async requeueUnfinished(store: JobStore): Promise<number> {
    let queued = 0;
    for (const state of ["queued", "running"] as const) {
      let cursor: string | undefined;
      do {
        const page = await store.list({ state, limit: 500, ...(cursor ? { cursor } : {}) });
        for (const job of page.jobs) {
          const existing = await this.queue.getJob(job.id);
          if (!existing) {
            await this.enqueue(job);
            queued++;
          } else if (await existing.isFailed()) {
            await existing.retry("failed");
            queued++;
          }
        }
        cursor = page.next;
      } while (cursor);
    }
    return queued;
  }

  /** Runs requeueUnfinished now and then every `intervalMs` until close; failures go to onError. */
  sweepEvery(store: JobStore, intervalMs = 60_000): void {
    const sweep = () => {
      this.sweeping = this.requeueUnfinished(store)
        .then(() => undefined, this.onError)
        .finally(() => {
          if (!this.closed) this.sweepTimer = setTimeout(sweep, intervalMs);
        });
    };
    sweep();
  }

  /** BullMQ's counts (waiting, active, delayed, completed, failed), for metrics and tests. */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts("waiting", "active", "delayed", "completed", "failed", "prioritized");
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.sweepTimer);
    await this.sweeping;
    await this.queue.close();
    this.redis.disconnect();
  }
}
