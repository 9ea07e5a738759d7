/**
 * A running job's lease kept alive: renewed every third of its length, so that two renewals may fail (a store
 * that hiccups) before another worker may take the job. At each renewal the job's record is read for a cancel
 * request, which is how a cancel asked through the API reaches the worker holding the job, wherever it runs.
 * A renewal answered false means the job is no longer this worker's (its lease ran out and another worker took
 * it, or it was ended): the work must stop without touching the job again.
 */
import type { JobStore } from "./job-store.js";

export interface LeaseHeartbeatOptions {
  readonly store: JobStore;
  readonly job: string;
  readonly worker: string;
  readonly leaseMs: number;
  /** The lease is lost: called once, and the heartbeat stops. */
  readonly onLost: () => void;
  /** A cancel was asked: called once; the heartbeat goes on (the job still has to end as cancelled). */
  readonly onCancel: () => void;
}

export interface LeaseHeartbeat {
  stop(): void;
}

export function startLeaseHeartbeat(options: LeaseHeartbeatOptions): LeaseHeartbeat {
  const { store, job, worker, leaseMs } = options;
  let busy = false;
  let cancelled = false;
  const beat = async () => {
    if (busy) return;
    busy = true;
    try {
      if (!(await store.renew(job, worker, leaseMs))) {
        clearInterval(timer);
        options.onLost();
        return;
      }
      if (!cancelled && (await store.get(job))?.cancelRequested) {
        cancelled = true;
        options.onCancel();
      }
    } catch {
      // The store did not answer: the next beat tries again, and the lease's length covers two misses.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void beat(), Math.max(1, Math.floor(leaseMs / 3)));
  return { stop: () => clearInterval(timer) };
}
