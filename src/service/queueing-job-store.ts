/**
 * A job store that also feeds the BullMQ queue: what `serve --redis` hands the API server in place of the bare
 * store, so that the API's routes queue and cancel through BullMQ without knowing it. `submit` stores the job,
 * then queues its id (BullmqJobQueue.submit: a refused enqueue is left to the sweep); `requestCancel` marks the
 * job, and a job that was still queued also leaves BullMQ. Every other method is the store's own.
 */
import type { BullmqJobQueue } from "./bullmq-queue.js";
import type { JobStore } from "./job-store.js";

export function queueingJobStore(store: JobStore, queue: BullmqJobQueue): JobStore {
  const submit: JobStore["submit"] = (request) => queue.submit(store, request);
  const requestCancel: JobStore["requestCancel"] = (id) => queue.cancel(store, id);
  // A Proxy rather than a class that lists the methods: a method added to JobStore passes through unchanged.
  return new Proxy(store, {
    get(target, property) {
      if (property === "submit") return submit;
      if (property === "requestCancel") return requestCancel;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
