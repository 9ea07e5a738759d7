/**
 * How a failure reaches the user, whichever command failed and wherever: one line on stderr ("chromogenic:
 * message"), and with --json an `error` event on stdout before the command exits, carrying the stable code
 * (docs/ERRORS.md), the message and the exit status.
 */
import { errorEvent } from "../util/result-events.js";

export interface ErrorReportContext {
  readonly json: boolean;
  /** The job the failure ended, when a job was running. */
  readonly job?: string;
  /** The sentence is already on stderr (commander writes its own): only the event remains to write. */
  readonly toldOnStderr?: boolean;
}

/** Reports `error` and returns the status the process should exit with. */
export function reportError(error: unknown, context: ErrorReportContext): number {
  const event = errorEvent(error, context.job);
  if (context.json) process.stdout.write(JSON.stringify(event) + "\n");
  if (!context.toldOnStderr) process.stderr.write(`chromogenic: ${event.message}\n`);
  if (process.env.CHROMOGENIC_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
  return event.exitCode;
}
