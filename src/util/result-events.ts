/**
 * The two events that end a run, built in one place for everything that ends one: the CLI's --json output
 * (cli/run-command.ts, cli/error-report.ts) and a service job's event log (service/job-runner.ts), so that a
 * job followed through the service ends exactly as the same command run locally.
 */
import type { CommandName, DoneEvent, ErrorEvent } from "./events.js";
import { errorCode, exitStatus } from "./errors.js";

/** A run's result as its `done` event: the result's fields beside `command`. */
export function doneEvent(command: CommandName, result: object): DoneEvent {
  return { event: "done", command, ...result };
}

/**
 * A system error from Node ("ENOENT: no such file or directory, realpath '/x.raw'") as a sentence naming the
 * user's file ("/x.raw: no such file or directory"): the syscall is ours, not the user's business. Its code
 * (ENOENT) stays in the error event. Undefined for anything else.
 */
function systemErrorSentence(error: unknown): string | undefined {
  const e = error as { code?: unknown; syscall?: unknown; path?: unknown; message?: unknown } | null;
  if (typeof e?.code !== "string" || typeof e.syscall !== "string" || typeof e.path !== "string") return undefined;
  if (typeof e.message !== "string") return undefined;
  const what = /^[A-Z0-9_]+: ([^,]+),/.exec(e.message)?.[1];
  return what === undefined ? undefined : `${e.path}: ${what}`;
}

/** The one sentence a failure is told in: on stderr, and as the `error` event's message. */
export function errorSentence(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return systemErrorSentence(error) ?? (typeof message === "string" && message !== "" ? message : String(error));
}

/** A failure as its `error` event; `job`: the job it ended, else the one the error names (JobInterruptedError). */
export function errorEvent(error: unknown, job?: string): ErrorEvent {
  const jobId = job ?? (error as { jobId?: unknown } | null)?.jobId;
  return {
    event: "error",
    ...(typeof jobId === "string" ? { job: jobId } : {}),
    code: errorCode(error),
    message: errorSentence(error),
    exitCode: exitStatus(error),
  };
}
