/**
 * A job's events as server-sent events: each stored event as `id: <seq>` and `data: <event JSON>`, from the
 * number the client last saw (Last-Event-ID, or ?after=) on, then the new ones as workers append them, until the
 * job has finished and every event was sent; then `event: end` with the job, and the stream closes. The store is
 * polled (a cheap indexed read) rather than told, so the stream works the same whichever process or host the
 * worker runs on. Comments keep an idle connection open through proxies; a client that goes away stops the loop.
 */
import type { ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobStore } from "../job-store.js";
import { isFinished } from "../service-job.js";

/** Events read from the store at once. */
const BATCH = 500;

export interface EventStreamOptions {
  readonly store: JobStore;
  readonly jobId: string;
  readonly after: number;
  readonly pollMs: number;
  readonly heartbeatMs: number;
  /** Aborted when the client disconnects or the server closes. */
  readonly signal: AbortSignal;
}

export async function streamJobEvents(res: ServerResponse, options: EventStreamOptions): Promise<void> {
  const { store, jobId, pollMs, heartbeatMs, signal } = options;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  // A reconnecting EventSource waits this long (ms) before trying again.
  res.write(`retry: ${Math.max(1000, pollMs)}\n\n`);
  let after = options.after;
  let lastWrite = Date.now();
  while (!signal.aborted) {
    // The job's state is read before its events: a job seen finished has no event still to come after them.
    const job = await store.get(jobId);
    const events = await store.events(jobId, after, BATCH);
    for (const { seq, event } of events) {
      res.write(`id: ${seq}\ndata: ${JSON.stringify(event)}\n\n`);
      after = seq;
    }
    if (events.length > 0) lastWrite = Date.now();
    if (events.length === BATCH) continue;
    if (!job || isFinished(job.state)) {
      if (job) res.write(`event: end\ndata: ${JSON.stringify(job)}\n\n`);
      break;
    }
    if (Date.now() - lastWrite >= heartbeatMs) {
      res.write(": keep-alive\n\n");
      lastWrite = Date.now();
    }
    await sleep(pollMs, undefined, { signal }).catch(() => undefined);
  }
  res.end();
}

/** The number to resume after: Last-Event-ID when sent (a browser's EventSource sends it), else ?after=, else 0. */
export function resumePoint(lastEventId: string | string[] | undefined, after: number | undefined): number | undefined {
  const header = Array.isArray(lastEventId) ? lastEventId[0] : lastEventId;
  if (header !== undefined && header !== "") {
    const seq = Number(header);
    return Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
  }
  return after ?? 0;
}
