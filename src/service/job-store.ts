/**
 * Where the service keeps its jobs and their events: SQLite for one process (sqlite-job-store.ts, node:sqlite),
 * PostgreSQL when several API processes share them (postgres-job-store.ts). Every implementation passes the same
 * contract test (test/service/job-store-contract.ts).
 *
 * Workers hold a job by a lease: `claim` takes a queued job, or a running one whose lease ran out (its worker
 * died), and `renew` extends it while the worker lives. A worker whose renew fails has lost the job (another
 * worker may hold it) and stops touching it. Events are numbered per job from 1, in order, so that a client can
 * resume a stream with `Last-Event-ID`.
 */
import type { ChromogenicEvent } from "../util/events.js";
import type { JobSpec, JobKind } from "./job-spec.js";
import type { JobProgress, ServiceJob, ServiceJobState } from "./service-job.js";

export interface SubmitRequest {
  readonly spec: JobSpec;
  readonly owner: string;
  /** A client's retry of the same submission (same owner, same key) answers the first job, not a new one. */
  readonly idempotencyKey?: string;
}

export interface JobFilter {
  readonly state?: ServiceJobState;
  readonly kind?: JobKind;
  readonly owner?: string;
  /** At most this many, newest first. */
  readonly limit: number;
  /** The `next` cursor of the previous page. */
  readonly cursor?: string;
}

export interface JobPage {
  readonly jobs: ServiceJob[];
  /** Present when there are more: pass it as `cursor`. */
  readonly next?: string;
}

export interface StoredEvent {
  readonly seq: number;
  readonly event: ChromogenicEvent;
}

export interface JobOutcome {
  readonly state: "succeeded" | "failed" | "cancelled";
  readonly result?: Record<string, unknown>;
  readonly error?: { code: string; message: string };
}

export interface JobStore {
  submit(request: SubmitRequest): Promise<{ job: ServiceJob; created: boolean }>;
  get(id: string): Promise<ServiceJob | undefined>;
  list(filter: JobFilter): Promise<JobPage>;
  /** Jobs by state (the metrics). */
  countByState(): Promise<Record<ServiceJobState, number>>;

  /** Marks a cancel request; a queued job becomes cancelled at once. Undefined when there is no such job. */
  requestCancel(id: string): Promise<ServiceJob | undefined>;

  /**
   * The oldest queued job this worker accepts, or a running job whose lease ended before now, now held by
   * `worker` until now + leaseMs; its attempts counted. Undefined when there is none.
   */
  claim(worker: string, leaseMs: number, accepts?: (job: ServiceJob) => boolean): Promise<ServiceJob | undefined>;
  /** Extends the lease; false when `worker` no longer holds the job (lease taken over, or job finished). */
  renew(id: string, worker: string, leaseMs: number): Promise<boolean>;
  /**
   * Ends the lease at once, the job unfinished (its worker is stopping): the next claim takes it over as it would
   * after the worker died, without waiting for the lease to run out. The job stays running rather than queued, so
   * that a cancel asked meanwhile still reaches a worker, which removes what the job left in the clouds. False
   * when `worker` no longer holds it.
   */
  release(id: string, worker: string): Promise<boolean>;
  /** The held job's progress and the library's saved state; false when `worker` no longer holds it. */
  update(id: string, worker: string, patch: { progress?: JobProgress; workflowState?: unknown }): Promise<boolean>;
  /** The library's saved state of the job, for a worker that resumes it. */
  workflowState(id: string): Promise<unknown>;
  /** Ends a held job; false when `worker` no longer holds it (nothing is changed then). */
  finish(id: string, worker: string, outcome: JobOutcome): Promise<boolean>;

  /** Appends an event; its number. */
  appendEvent(id: string, event: ChromogenicEvent): Promise<number>;
  /** Events numbered above `afterSeq`, in order, at most `limit`. */
  events(id: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;

  close(): Promise<void>;
}
