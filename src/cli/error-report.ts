/**
 * How a failure reaches the user, whichever command failed and wherever: one line on stderr ("chromogenic:
 * message"), and with --json an `error` event on stdout before the command exits, carrying the stable code
 * (docs/ERRORS.md), the message and the exit status.
 */
import type { ErrorEvent } from "../util/events.js";
import { errorCode, exitStatus } from "../util/errors.js";

export interface ErrorReportContext {
  readonly json: boolean;
  /** The job the failure ended, when a job was running. */
  readonly job?: string;
  /** The sentence is already on stderr (commander writes its own): only the event remains to write. */
  readonly toldOnStderr?: boolean;
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

/** Reports `error` and returns the status the process should exit with. */
export function reportError(error: unknown, context: ErrorReportContext): number {
  const message = (error as { message?: unknown } | null)?.message;
  const text = systemErrorSentence(error) ?? (typeof message === "string" && message !== "" ? message : String(error));
  const exitCode = exitStatus(error);
  const jobId = context.job ?? (error as { jobId?: unknown } | null)?.jobId;
  if (context.json) {
    const event: ErrorEvent = {
      event: "error",
      ...(typeof jobId === "string" ? { job: jobId } : {}),
      code: errorCode(error),
      message: text,
      exitCode,
    };
    process.stdout.write(JSON.stringify(event) + "\n");
  }
  if (!context.toldOnStderr) process.stderr.write(`chromogenic: ${text}\n`);
  if (process.env.CHROMOGENIC_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
  return exitCode;
}
