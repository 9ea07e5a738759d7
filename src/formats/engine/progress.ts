/**
 * Progress events: one schema for every phase of every job, emitted by the library and printed by the CLI
 * (as a bar on a TTY, as JSON lines with --json).
 */
export interface ProgressEvent {
  readonly phase: string;
  /** Bytes of the phase's work done so far (virtual disk bytes for convert). */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Seconds since the phase started. */
  readonly elapsed: number;
  /** Bytes per second over the whole phase so far. */
  readonly rate: number;
  /** Estimated seconds left, or null while unknown. */
  readonly eta: number | null;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Turns byte counts into throttled ProgressEvents (at most one per `intervalMs`, plus the final one). */
export class ProgressTracker {
  private readonly started = performance.now();
  private lastEmit = 0;
  private done = 0;

  constructor(
    private readonly phase: string,
    private readonly total: number,
    private readonly listener: ProgressListener | undefined,
    private readonly intervalMs = 200,
  ) {}

  advance(bytes: number): void {
    this.done += bytes;
    if (!this.listener) return;
    const now = performance.now();
    if (now - this.lastEmit >= this.intervalMs) {
      this.lastEmit = now;
      this.listener(this.event(now));
    }
  }

  complete(): void {
    this.listener?.(this.event(performance.now()));
  }

  private event(now: number): ProgressEvent {
    const elapsed = (now - this.started) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const left = this.total - this.done;
    return {
      phase: this.phase,
      bytesDone: this.done,
      bytesTotal: this.total,
      elapsed,
      rate,
      eta: rate > 0 && elapsed > 0.5 ? left / rate : left === 0 ? 0 : null,
    };
  }
}
