/**
 * The one runner of the CLI's commands that do work (convert, export, clean, the jobs): the events shown as the
 * user asked (progress-display.ts), Ctrl-C and SIGTERM cancelling through the work's AbortSignal, then the
 * result — a `done` JSON line with --json, else a summary — or the failure reported as every failure is
 * (error-report.ts). Commands that only print something (info, formats, clouds, …) end with `printResult`.
 */
import type { CommandName, ProgressListener, WorkListener } from "../util/events.js";
import { doneEvent } from "../util/result-events.js";
import { reportError } from "./error-report.js";
import { cancelOnSignals } from "./interrupts.js";
import { eventDisplay, type DisplayMode } from "./progress-display.js";
import { sendProcessWarningsTo } from "./process-warnings.js";

export interface CommandContext {
  /** Aborted by Ctrl-C or SIGTERM: the work undoes what it did and fails. */
  readonly signal: AbortSignal;
  /** Every event of the work (the library's listeners take it). */
  readonly onEvent: WorkListener;
  /**
   * For progress alone: undefined when nobody would see it (--quiet, or stderr not a terminal, without --json),
   * so that the work spares itself counting.
   */
  readonly onProgress: ProgressListener | undefined;
  /** Tells the user something the work let pass: a `message` warning. */
  readonly warn: (text: string) => void;
  /** A job's id exists: shown at once, so an interrupted job can be resumed. */
  readonly onJobCreated: (id: string) => void;
}

/** How a command's result is printed. */
export interface ResultOutput<R> {
  readonly command: CommandName;
  readonly json: boolean;
  readonly quiet?: boolean;
  /** The result for people; without it the human form prints nothing on success. */
  readonly summary?: (result: R) => string;
  /**
   * Where the summary goes: stdout (the default) when it is the command's answer, printed with --quiet too;
   * stderr when stdout may carry data (convert's, export's), and then --quiet silences it.
   */
  readonly summaryTo?: "stdout" | "stderr";
}

export type CommandOutput<R> = ResultOutput<R> &
  DisplayMode & {
    /** How long a cancelled command may take to undo its work before it is stopped (interrupts.ts). */
    readonly undoSeconds?: number;
  };

export async function runCommand<R extends object>(
  output: CommandOutput<R>,
  work: (context: CommandContext) => Promise<R>,
): Promise<void> {
  const display = eventDisplay(output);
  const interrupts = cancelOnSignals(output.undoSeconds);
  const warn = (text: string) => display.show({ event: "message", level: "warning", text });
  // What the library says through process warnings (images not locked, …) is the work's to show as well.
  const restoreWarnings = sendProcessWarningsTo(warn);
  let job: string | undefined;
  try {
    const result = await work({
      signal: interrupts.signal,
      onEvent: display.show,
      onProgress: display.showsProgress ? display.show : undefined,
      warn,
      onJobCreated: (id) => {
        job = id;
        display.show({ event: "job", job: id });
      },
    });
    display.close();
    printResult(output, result);
  } catch (e) {
    display.close();
    process.exitCode = reportError(e, { json: output.json, job });
  } finally {
    interrupts.dispose();
    restoreWarnings();
  }
}

/** A command's result: the `done` event with --json (the result's fields beside `command`), else its summary. */
export function printResult<R extends object>(output: ResultOutput<R>, result: R): void {
  if (output.json) {
    process.stdout.write(JSON.stringify(doneEvent(output.command, result)) + "\n");
    return;
  }
  if (!output.summary) return;
  const text = output.summary(result);
  if (output.summaryTo === "stderr") {
    if (!output.quiet) process.stderr.write(text.endsWith("\n") ? text : text + "\n");
  } else process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}
