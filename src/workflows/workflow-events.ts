/**
 * The one event schema of every workflow (create-image, export, migrate, resume) and every phase of them. The
 * library emits these; the CLI prints them as JSON lines with --json (one object per line, `event` first) or
 * draws a bar on a terminal. Byte counts are of the phase's own work: bytes received (download), disk bytes
 * walked (convert), bytes sent (upload); `total` is null while unknown (a snapshot being saved).
 */
export type WorkflowPhase = "snapshot-wait" | "download" | "convert" | "clean" | "upload" | "import" | "verify";

export interface WorkflowProgressEvent {
  readonly event: "progress";
  readonly job: string;
  readonly phase: WorkflowPhase;
  readonly bytes: number;
  readonly total: number | null;
  /** Bytes per second over the phase so far. */
  readonly rate: number;
  /** Seconds since the phase started. */
  readonly elapsed: number;
  /** Seconds left, null while unknown. */
  readonly eta: number | null;
}

export interface WorkflowPhaseEvent {
  readonly event: "phase";
  readonly job: string;
  readonly phase: WorkflowPhase;
  readonly state: "start" | "end";
  /** What the phase does or did, for people (e.g. "qcow2 → raw, streamed into the upload"). */
  readonly detail?: string;
}

export interface WorkflowMessageEvent {
  readonly event: "message";
  readonly job: string;
  readonly level: "info" | "warning";
  readonly text: string;
}

export type WorkflowEvent = WorkflowProgressEvent | WorkflowPhaseEvent | WorkflowMessageEvent;
export type WorkflowListener = (event: WorkflowEvent) => void;

/** Turns a phase's byte counts into throttled progress events (at most one per `intervalMs`, plus the last). */
export class PhaseMeter {
  private readonly started = performance.now();
  private lastEmit = 0;
  private bytes = 0;

  constructor(
    private readonly job: string,
    readonly phase: WorkflowPhase,
    private total: number | null,
    private readonly listener: WorkflowListener | undefined,
    private readonly intervalMs = 250,
    /** Bytes already done before this run (a resumed download): counted in `bytes`, not in the rate. */
    private readonly startBytes = 0,
  ) {
    this.bytes = startBytes;
  }

  /** Sets the running count (providers report absolute counts). */
  set(bytes: number, total?: number): void {
    this.bytes = bytes;
    if (total !== undefined) this.total = total;
    this.maybeEmit();
  }

  advance(bytes: number): void {
    this.bytes += bytes;
    this.maybeEmit();
  }

  /** For phases with no byte count (a snapshot being saved): an event that shows time passing. */
  tick(): void {
    this.maybeEmit();
  }

  complete(): void {
    this.listener?.(this.event(performance.now()));
  }

  private maybeEmit(): void {
    if (!this.listener) return;
    const now = performance.now();
    if (now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    this.listener(this.event(now));
  }

  private event(now: number): WorkflowProgressEvent {
    const elapsed = (now - this.started) / 1000;
    const rate = elapsed > 0 ? (this.bytes - this.startBytes) / elapsed : 0;
    const left = this.total === null ? null : Math.max(0, this.total - this.bytes);
    return {
      event: "progress",
      job: this.job,
      phase: this.phase,
      bytes: this.bytes,
      total: this.total,
      rate,
      elapsed,
      eta: left === null ? null : rate > 0 && elapsed > 0.5 ? left / rate : left === 0 ? 0 : null,
    };
  }
}
