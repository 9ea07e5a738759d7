/**
 * The one way the CLI shows a command's events (util/events.ts), whichever command runs: with --json every
 * event as a JSON line on stdout; otherwise on stderr, a redrawn progress line when it is a terminal, and
 * lines that read well in a log when it is not (cron jobs get the phases of a job and the warnings, no bars).
 */
import type { ChromogenicEvent, ProgressEvent } from "../util/events.js";
import { formatBytes, formatDuration } from "../util/human.js";

export interface DisplayMode {
  /** --json: events as JSON lines on stdout. */
  readonly json: boolean;
  /** --quiet: no progress, no phases, no informational messages; warnings still show. */
  readonly quiet: boolean;
  /** No progress line even without --quiet (e.g. while the command's output goes to stdout). */
  readonly hideProgress?: boolean;
  /** When stderr is not a terminal, a line per phase started (the long jobs do, so a log shows where they are). */
  readonly logPhases?: boolean;
}

export interface EventDisplay {
  readonly show: (event: ChromogenicEvent) => void;
  /** Whether progress events show at all (as JSON lines or a terminal's progress line). */
  readonly showsProgress: boolean;
  /** Ends a progress line so later output starts on a fresh one. */
  close(): void;
}

export function eventDisplay(mode: DisplayMode): EventDisplay {
  if (mode.json) {
    return { show: (e) => process.stdout.write(JSON.stringify(e) + "\n"), showsProgress: true, close: () => undefined };
  }
  const tty = !mode.quiet && !mode.hideProgress && !!process.stderr.isTTY;
  let drawn = false;
  const close = () => {
    if (drawn) process.stderr.write("\n");
    drawn = false;
  };
  const line = (text: string) => {
    close();
    process.stderr.write(`chromogenic: ${text}\n`);
  };
  const redraw = (text: string) => {
    process.stderr.write(`\r${text}\x1b[K`);
    drawn = true;
  };
  return {
    show: (e) => {
      switch (e.event) {
        case "message":
          if (e.level === "warning") line(`warning: ${e.text}`);
          else if (!mode.quiet) line(e.text);
          return;
        case "job":
          if (!mode.quiet) line(`job ${e.job}`);
          return;
        case "phase":
          if (tty && e.state === "end") close();
          else if (!tty && mode.logPhases && !mode.quiet && e.state === "start") {
            line(`${e.phase}${e.detail ? `: ${e.detail}` : ""}`);
          }
          return;
        case "step":
          if (tty) redraw(fitLine(`${e.phase} ${e.name} (${e.index}/${e.count})`, process.stderr.columns ?? 80));
          return;
        case "progress":
          if (tty) redraw(renderProgress(e, process.stderr.columns ?? 80));
          return;
        default:
          return;
      }
    },
    showsProgress: tty,
    close,
  };
}

/**
 * One progress line: a bar over the data to move when its total is known (else over the disk walked, for a
 * phase that walks one), the data moved, its rate and the time left. Only bytes and time when neither is known.
 */
export function renderProgress(e: ProgressEvent, columns: number): string {
  const label = `${e.phase.padEnd(13)} `;
  const walk = e.virtualSize !== undefined && e.position !== undefined && e.virtualSize > 0;
  if (e.total === null && !walk) {
    return `${label}${e.bytes ? `${formatBytes(e.bytes)} ` : ""}${formatDuration(e.elapsed)}`;
  }
  const fraction = e.total !== null ? (e.total > 0 ? Math.min(1, e.bytes / e.total) : 1) : e.position! / e.virtualSize!;
  const moved = e.total !== null ? `${formatBytes(e.bytes)}/${formatBytes(e.total)}` : `${formatBytes(e.bytes)} data`;
  const percent = ` ${(fraction * 100).toFixed(1).padStart(5)}%`;
  const info = `${percent} ${moved} ${formatBytes(Math.round(e.rate))}/s ETA ${formatDuration(e.eta ?? NaN)}`;
  // The widest of these that fits: a line longer than the terminal wraps, and `\r` then redraws only its last
  // row, so every update would leave a row behind.
  const room = columns - 1 - label.length - info.length - 2;
  if (room >= 10) {
    const width = Math.min(30, room);
    const filled = Math.round(fraction * width);
    return `${label}[${"#".repeat(filled)}${"-".repeat(width - filled)}]${info}`;
  }
  return fitLine(`${label.trimEnd()}${info}`, columns);
}

/** `text` cut to one row of a `columns`-wide terminal (one column spare, so the cursor never wraps). */
export function fitLine(text: string, columns: number): string {
  const max = Math.max(1, columns - 1);
  return text.length <= max ? text : text.slice(0, max);
}
