/**
 * Turns a phase's byte counts into progress events (util/events.ts), throttled to one per `intervalMs` plus the
 * last. Rate and ETA count data only: a phase that walks a disk (a conversion) reports its holes and zero
 * ranges through `skip`, which moves `position` but neither `bytes` nor the rate, so a sparse 100 GiB disk
 * holding 1 GiB shows the speed its data moves at and the time its remaining data needs, not gigabytes a
 * second while it skips a hole.
 */
import type { Phase, ProgressEvent, ProgressListener } from "./events.js";

export interface ProgressMeterOptions {
  readonly phase: Phase;
  /** Data bytes the phase moves in all; null while unknown (`setTotal` gives it later). */
  readonly total: number | null;
  readonly listener: ProgressListener | undefined;
  /** The job whose phase this is (a job's events name it). */
  readonly job?: string;
  /** For a phase that walks a disk of this size: events then carry `position` and `virtualSize`. */
  readonly virtualSize?: number;
  /** Bytes done before this run (a resumed download): counted in `bytes`, not in the rate. */
  readonly startBytes?: number;
  readonly intervalMs?: number;
  /** Milliseconds from an arbitrary origin; tests give their own clock. */
  readonly now?: () => number;
}

/** Seconds of a phase after which the rate is trusted for an ETA (before, one burst would skew it). */
const ETA_AFTER_SECONDS = 0.5;

export class ProgressMeter {
  readonly phase: Phase;
  private readonly now: () => number;
  private readonly started: number;
  private readonly startBytes: number;
  private readonly intervalMs: number;
  private lastEmit = -Infinity;
  private bytes: number;
  private position = 0;
  private total: number | null;

  constructor(private readonly options: ProgressMeterOptions) {
    this.phase = options.phase;
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
    this.startBytes = options.startBytes ?? 0;
    this.bytes = this.startBytes;
    this.total = options.total;
    this.intervalMs = options.intervalMs ?? 200;
  }

  /** `bytes` of data moved (and, in a disk walk, walked over). */
  advance(bytes: number): void {
    this.bytes += bytes;
    this.position += bytes;
    this.maybeEmit();
  }

  /** In a disk walk: `bytes` walked over without moving data (a hole, a zero range). */
  skip(bytes: number): void {
    this.position += bytes;
    this.maybeEmit();
  }

  /** Sets the running count (transfers report absolute counts), and the total when it became known. */
  set(bytes: number, total?: number): void {
    this.bytes = bytes;
    if (total !== undefined) this.total = total;
    this.maybeEmit();
  }

  setTotal(total: number): void {
    this.total = total;
  }

  /** For a phase with no byte count (a snapshot being saved): an event that shows time passing. */
  tick(): void {
    this.maybeEmit();
  }

  /** The last event: the phase is done, so its total is what it moved, and nothing is left. */
  complete(): void {
    this.total = this.bytes;
    if (this.options.virtualSize !== undefined) this.position = this.options.virtualSize;
    this.options.listener?.(this.event(this.now()));
  }

  private maybeEmit(): void {
    if (!this.options.listener) return;
    const now = this.now();
    if (now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    this.options.listener(this.event(now));
  }

  private event(now: number): ProgressEvent {
    const elapsed = Math.max(0, (now - this.started) / 1000);
    const rate = elapsed > 0 ? (this.bytes - this.startBytes) / elapsed : 0;
    const left = this.total === null ? null : Math.max(0, this.total - this.bytes);
    const eta = left === null ? null : left === 0 ? 0 : rate > 0 && elapsed > ETA_AFTER_SECONDS ? left / rate : null;
    const { job, virtualSize } = this.options;
    return {
      event: "progress",
      ...(job === undefined ? {} : { job }),
      phase: this.phase,
      bytes: this.bytes,
      total: this.total,
      ...(virtualSize === undefined ? {} : { position: Math.min(this.position, virtualSize), virtualSize }),
      rate,
      elapsed,
      eta,
    };
  }
}
