import { resolve } from "node:path";
import type { ProgressListener } from "../formats/engine/progress.js";
import type { ReferencePolicy } from "../formats/types.js";
import { cancelOnSignals } from "./interrupts.js";
import { progressDisplay } from "./progress-display.js";
import { sendProcessWarningsTo } from "./process-warnings.js";

export interface JobOutput {
  /** --json: progress events and the result as JSON lines on stdout. */
  readonly json: boolean;
  /** --quiet: no progress bar and no summary. */
  readonly quiet: boolean;
  /** No progress bar even without --quiet (e.g. while the job's output goes to stdout). */
  readonly hideProgress?: boolean;
}

export interface JobContext {
  /** Aborted by Ctrl-C or SIGTERM: the job undoes its work and fails. */
  readonly signal: AbortSignal;
  readonly onProgress: ProgressListener | undefined;
  /**
   * Tells the user something the job let pass (an OVA file its manifest does not cover): a `message` event
   * with --json (the workflows' shape), else "chromogenic: warning: …" on stderr — with --quiet too, which
   * silences progress and the summary, not what the user should know.
   */
  readonly warn: (text: string) => void;
}

/**
 * Runs the job of a command that writes an image (convert, export) as each of them does: progress shown as the
 * user asked, Ctrl-C cancelling through the job's signal, then the result as a final `done` JSON line with
 * --json, or `summary(result)` on stderr unless --quiet.
 */
export async function runJob<R extends object>(
  output: JobOutput,
  job: (context: JobContext) => Promise<R>,
  summary: (result: R) => string,
): Promise<void> {
  const display = progressDisplay({ json: output.json, quiet: output.quiet || !!output.hideProgress });
  const interrupts = cancelOnSignals();
  const warn = (text: string) => {
    if (output.json) {
      process.stdout.write(JSON.stringify({ event: "message", level: "warning", text }) + "\n");
    } else {
      display.close();
      process.stderr.write(`chromogenic: warning: ${text}\n`);
    }
  };
  const restoreWarnings = sendProcessWarningsTo(warn);
  try {
    const result = await job({ signal: interrupts.signal, onProgress: display.listener, warn });
    display.close();
    if (output.json) {
      process.stdout.write(JSON.stringify({ event: "done", ...result }) + "\n");
    } else if (!output.quiet) {
      process.stderr.write(summary(result) + "\n");
    }
  } finally {
    display.close();
    interrupts.dispose();
    restoreWarnings();
  }
}

/** The reference policy of `--allow-reference PATH...`: exactly the paths named, made absolute. */
export function allowedReferences(paths: readonly string[] | undefined): ReferencePolicy {
  return { allowedPaths: (paths ?? []).map((p) => resolve(p)) };
}
