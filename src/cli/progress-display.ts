import type { ProgressEvent, ProgressListener } from "../formats/engine/progress.js";
import { formatBytes, formatDuration } from "../util/human.js";

/**
 * How progress reaches the user: a redrawn bar when stderr is a terminal, JSON lines on stdout with --json,
 * nothing otherwise (logs of cron jobs stay clean).
 */
export interface ProgressDisplay {
  readonly listener: ProgressListener | undefined;
  /** Ends the bar's line so later output starts on a fresh one. */
  close(): void;
}

export function progressDisplay(mode: { json: boolean; quiet: boolean }): ProgressDisplay {
  if (mode.json) {
    return {
      listener: (e) => process.stdout.write(JSON.stringify({ event: "progress", ...e }) + "\n"),
      close: () => undefined,
    };
  }
  if (mode.quiet || !process.stderr.isTTY) return { listener: undefined, close: () => undefined };
  let drawn = false;
  return {
    listener: (e) => {
      process.stderr.write(`\r${renderBar(e, process.stderr.columns ?? 80)}`);
      drawn = true;
    },
    close: () => {
      if (drawn) process.stderr.write("\n");
      drawn = false;
    },
  };
}

export function renderBar(e: ProgressEvent, columns: number): string {
  const fraction = e.bytesTotal > 0 ? Math.min(1, e.bytesDone / e.bytesTotal) : 1;
  const pct = `${(fraction * 100).toFixed(1).padStart(5)}%`;
  const info = ` ${pct} ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)} ${formatBytes(e.rate)}/s ETA ${formatDuration(e.eta ?? NaN)} `;
  const label = `${e.phase} `;
  const width = Math.max(10, Math.min(50, columns - info.length - label.length - 3));
  const filled = Math.round(fraction * width);
  return `${label}[${"#".repeat(filled)}${"-".repeat(width - filled)}]${info}`;
}
