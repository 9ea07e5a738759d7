/**
 * Following a job of a service to its end, as a local run of it is watched: its work events handed on as
 * they come (progress, phases, steps, messages), then how it ended — the `done` event with its result, or the
 * `error` event with its code and exit status — from the job's own final events, or from its record when the
 * stream carried none (a job cancelled while queued never ran, so it has no events).
 */
import type { ChromogenicEvent, DoneEvent, ErrorEvent } from "../../util/events.js";
import { ERROR_CODES } from "../../util/errors.js";
import { isFinished, type ServiceJob } from "../service-job.js";
import type { ServiceClient } from "./service-client.js";

export interface FollowedJob {
  readonly job: ServiceJob;
  /** The job's result, when it succeeded: the `done` event of the command that would have run it locally. */
  readonly done?: DoneEvent;
  /** Why it did not succeed, with the exit status a local run would have had. */
  readonly error?: ErrorEvent;
  /** The number of the last event seen, to follow on from. */
  readonly lastSeq: number;
}

export interface FollowOptions {
  /** Events already seen: following starts after this number. */
  readonly afterSeq?: number;
  readonly signal?: AbortSignal;
  /** The command name a result's `done` event carries when the service's events have none. */
  readonly command: DoneEvent["command"];
}

export async function followJob(
  client: ServiceClient,
  id: string,
  onEvent: (event: ChromogenicEvent) => void,
  options: FollowOptions,
): Promise<FollowedJob> {
  let lastSeq = options.afterSeq ?? 0;
  let done: DoneEvent | undefined;
  let error: ErrorEvent | undefined;
  for (;;) {
    for await (const { seq, event } of client.events(id, { afterSeq: lastSeq, signal: options.signal })) {
      lastSeq = seq;
      if (event.event === "done") done = event;
      else if (event.event === "error") error = event;
      else onEvent(event);
    }
    options.signal?.throwIfAborted();
    const job = await client.get(id, options.signal);
    // The stream ends with the job; one that ended early (a proxy's timeout) is followed on from where it stopped.
    if (!isFinished(job.state)) continue;
    return { job, lastSeq, ...outcome(job, options.command, done, error) };
  }
}

function outcome(
  job: ServiceJob,
  command: DoneEvent["command"],
  done: DoneEvent | undefined,
  error: ErrorEvent | undefined,
): { done?: DoneEvent; error?: ErrorEvent } {
  if (job.state === "succeeded") return { done: done ?? { event: "done", command, ...job.result } };
  if (error) return { error };
  const code = job.error?.code ?? (job.state === "cancelled" ? "EABORTED" : "EREMOTE");
  const message =
    job.error?.message ?? (job.state === "cancelled" ? `job ${job.id} was cancelled` : `job ${job.id} failed`);
  const exitCode = Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as keyof typeof ERROR_CODES] : 1;
  return {
    error: { event: "error", job: job.id, code: /^E[A-Z0-9]+$/.test(code) ? code : "EREMOTE", message, exitCode },
  };
}
