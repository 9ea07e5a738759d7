/**
 * A job store that also feeds the BullMQ queue: what `serve --redis` hands the API server in place of the bare
 * store, so that the API's routes queue and cancel through BullMQ without knowing it. `submit` stores the job,
 * then queues its id (BullmqJobQueue.submit: a refused enqueue is left to the sweep); `requestCancel` marks the
 * job, and a job that was still queued also leaves BullMQ. Every other method is the store's own.
 */
import type { BullmqJobQueue } from "./bullmq-queue.js";
import type { JobStore } from "./job-store.js";
import { withOverrides } from "./job-store-overrides.js";

export function queueingJobStore(store: JobStore, queue: BullmqJobQueue): JobStore {
  const submit: JobStore["submit"] = (request) => queue.submit(store, request);
  const requestCancel: JobStore["requestCancel"] = (id) => queue.cancel(store, id);
  return withOverrides(store, { submit, requestCancel });
}
