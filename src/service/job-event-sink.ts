/**
 * Where a running job's events go: appended to the job store in the order the work emitted them, by one writer
 * at a time, without the work ever waiting for the store — a conversion's hot path calls `push` and goes on. While
 * the store lags behind, a progress event still waiting is replaced by the next one of the same phase (only the
 * newest says how far the phase is); every other event is kept. The job's progress summary (the record's
 * `progress`: bytes, total, rate, ETA, what the job list shows) is written at most once per `summaryMs`, the last
 * one always.
 */
import type { ChromogenicEvent, ProgressEvent } from "../util/events.js";
import type { JobStore } from "./job-store.js";
import type { JobProgress } from "./service-job.js";

export class JobEventSink {
  private queue: ChromogenicEvent[] = [];
  private draining: Promise<void> | undefined;
  private discarded = false;

  private latest: ProgressEvent | undefined;
  private summaryWritten = 0;
  private summaryTimer: NodeJS.Timeout | undefined;
  private summaryWriting: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: JobStore,
    private readonly job: string,
    private readonly worker: string,
    private readonly summaryMs = 400,
  ) {}

  /** Queues `event` for the store; returns at once. */
  readonly push = (event: ChromogenicEvent): void => {
    if (this.discarded) return;
    if (event.event === "progress") {
      const last = this.queue.length > 1 ? this.queue[this.queue.length - 1] : undefined;
      if (last?.event === "progress" && last.phase === event.phase && last.job === event.job) {
        this.queue[this.queue.length - 1] = event;
      } else this.queue.push(event);
      this.noteProgress(event);
    } else this.queue.push(event);
    this.drain();
  };

  /** Resolves once every event pushed so far is stored, and the latest progress summary written. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
    clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    await this.summaryWriting;
    if (this.latest && !this.discarded) await this.writeSummary();
  }

  /** Drops what is still queued and stores nothing more: the job is no longer this worker's to report. */
  discard(): void {
    this.discarded = true;
    this.queue = [];
    clearTimeout(this.summaryTimer);
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = (async () => {
      while (this.queue.length > 0 && !this.discarded) {
        // Kept in the queue while it is written, so that a progress event pushed meanwhile does not replace it.
        const event = this.queue[0]!;
        // A store that fails to take an event does not fail the work: the job's outcome matters more than
        // its log, and the outcome is written by `finish`, which reports its own failure.
        await this.store.appendEvent(this.job, event).catch(() => undefined);
        this.queue.shift();
      }
    })().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0 && !this.discarded) this.drain();
    });
  }

  private noteProgress(event: ProgressEvent): void {
    this.latest = event;
    if (this.summaryTimer) return;
    const wait = Math.max(0, this.summaryWritten + this.summaryMs - Date.now());
    this.summaryTimer = setTimeout(() => {
      this.summaryTimer = undefined;
      this.summaryWriting = this.summaryWriting.then(() => this.writeSummary());
    }, wait);
  }

  private async writeSummary(): Promise<void> {
    const event = this.latest;
    if (!event || this.discarded) return;
    this.latest = undefined;
    this.summaryWritten = Date.now();
    const progress: JobProgress = {
      phase: event.phase,
      bytes: event.bytes,
      total: event.total,
      bytesPerSecond: event.rate,
      ...(event.eta !== null ? { etaSeconds: event.eta } : {}),
    };
    // false: the lease is gone, which the heartbeat notices and acts on.
    await this.store.update(this.job, this.worker, { progress }).catch(() => undefined);
  }
}
