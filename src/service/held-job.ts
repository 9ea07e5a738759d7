/**
 * Running one job that a worker holds in the job store: the runner callback does the work (the service's job
 * runner: startJob/resumeJob, convert, clean…), this keeps the lease alive meanwhile, tells the callback to stop
 * when the job is cancelled or the lease is lost, and records the outcome. How the worker came to hold the job
 * (store.claim, or store.acquire for a BullMQ job) does not matter here.
 *
 * The lease is renewed every third of its length, so two renewals may fail before it runs out. When a renewal
 * says another worker holds the job, or the store has not answered for a whole lease, the signal aborts with a
 * LeaseLostError: the callback stops touching the job and nothing is recorded (the new holder records it). A
 * cancel request (store.requestCancel, seen at the next renewal) aborts it with an AbortedError: the callback
 * undoes the job's cloud leftovers as on Ctrl-C, and the job ends `cancelled`.
 */
import { AbortedError, ChromogenicError, errorCode } from "../util/errors.js";
import type { JobOutcome, JobStore } from "./job-store.js";
import type { ServiceJob } from "./service-job.js";

export interface HeldJob {
  /** The worker holding the job, as the store knows it (store.update and store.finish take it). */
  readonly worker: string;
  /** Aborts when the job must stop: `reason` an AbortedError (cancelled) or a LeaseLostError. */
  readonly signal: AbortSignal;
  /** The store, for the callback's events (appendEvent), progress and saved state (update). */
  readonly store: JobStore;
}

/**
 * Runs `job` until it ends. Return an outcome to record it (e.g. `{ state: "succeeded", result }`), or nothing:
 * the job then succeeded, or was cancelled when `held.signal` aborted for a cancel. A throw records `failed`
 * with the error's code (errorCode) and message, or `cancelled` after a cancel.
 */
export type JobRunnerCallback = (job: ServiceJob, held: HeldJob) => Promise<JobOutcome | void>;

/** Another worker holds the job now (this one's lease ran out), or the store could not be reached to keep it. */
export class LeaseLostError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EINUSE");
  }
}

export interface RunHeldJobOptions {
  readonly store: JobStore;
  /** Held by `worker` (just claimed or acquired). */
  readonly job: ServiceJob;
  readonly worker: string;
  readonly leaseMs: number;
  readonly run: JobRunnerCallback;
  /** Store errors while keeping the lease (the job goes on; the lease is lost only after a whole lease). */
  readonly onError?: (error: unknown) => void;
}

/** `finished` when the outcome was recorded; `lost` when another worker holds the job now. */
export async function runHeldJob(options: RunHeldJobOptions): Promise<"finished" | "lost"> {
  const { store, job, worker } = options;
  const controller = new AbortController();
  const keeper = keepLease(options, controller);
  if (job.cancelRequested) controller.abort(new AbortedError("the job was cancelled"));
  let outcome: JobOutcome;
  try {
    outcome = (await options.run(job, { worker, signal: controller.signal, store })) ?? endedWithout(controller);
  } catch (e) {
    outcome = cancelled(controller)
      ? { state: "cancelled" }
      : { state: "failed", error: { code: errorCode(e), message: (e as Error)?.message ?? String(e) } };
  } finally {
    await keeper.stop();
  }
  if (controller.signal.reason instanceof LeaseLostError) return "lost";
  return (await store.finish(job.id, worker, outcome)) ? "finished" : "lost";
}

function cancelled(controller: AbortController): boolean {
  return controller.signal.reason instanceof AbortedError;
}

function endedWithout(controller: AbortController): JobOutcome {
  return cancelled(controller) ? { state: "cancelled" } : { state: "succeeded" };
}

/** Renews the lease every leaseMs/3 and watches for a cancel request until stopped. */
function keepLease(options: RunHeldJobOptions, controller: AbortController): { stop(): Promise<void> } {
  const { store, job, worker, leaseMs } = options;
  let lastRenewed = Date.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    try {
      if (!(await store.renew(job.id, worker, leaseMs))) {
        controller.abort(new LeaseLostError(`job ${job.id} is held by another worker now`));
        return;
      }
      lastRenewed = Date.now();
      if ((await store.get(job.id))?.cancelRequested && !controller.signal.aborted) {
        controller.abort(new AbortedError("the job was cancelled"));
      }
    } catch (e) {
      options.onError?.(e);
      if (Date.now() - lastRenewed >= leaseMs && !controller.signal.aborted) {
        controller.abort(new LeaseLostError(`the job store did not answer for a whole lease of job ${job.id}`));
      }
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(schedule);
    }, leaseMs / 3);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
