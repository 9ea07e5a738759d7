/**
 * The write side shared by the targets that store a disk in fixed-size units (qcow2 clusters, VMDK grains):
 * turns the convert pipeline's byte ranges, which need not respect unit boundaries, into whole units for the
 * format's writer (its UnitSink). Runs of whole units pass through as views of the caller's buffer (no
 * copy); a unit arriving in pieces is assembled in a buffer of its own. Bytes never written read as zeros,
 * and so does the padding after the disk's last byte when its size is not a multiple of the unit.
 *
 * It also orders the target's calls: they run one after another even if the caller does not wait for each,
 * the first failure fails every later call, and nothing may be written once the target finished or aborted.
 * A sink may keep borrowed data past its own promise (a file write still in flight) by returning a DataHold:
 * the next call then starts at once, and the caller's promise resolves only when the hold is released. This
 * is what makes unit targets `pipelined` (ImageTarget).
 */
import type { ImageTarget } from "../types.js";
import { isAllZero } from "./zero-runs.js";

/** Returned by a sink still using borrowed data after its promise resolved: `released` says when it is done. */
export interface DataHold {
  readonly released: Promise<void>;
}

export interface UnitSink {
  /**
   * Whole units from `firstUnit` on (`data` is a multiple of the unit size), in disk order. `borrowed` data
   * is the caller's and must not be kept once the promise resolves, unless the sink returns a DataHold and
   * lets go of the data when its `released` resolves; other data may be kept.
   */
  storeUnits(firstUnit: number, data: Buffer, borrowed: boolean): Promise<DataHold | void>;
}

export class UnitAssembler {
  /** Disk offset up to which everything has been received. */
  private position = 0;
  /** The unit `position` is inside, once data has arrived for it (zeros arrived otherwise). */
  private partial: Buffer | undefined;
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private state: "writing" | "finished" | "aborted" = "writing";
  /** Holds not yet released: finish() waits for them, and so does abort(). */
  private readonly holds = new Set<Promise<void>>();

  constructor(
    /** The format's name, for messages ("qcow2", "vmdk"). */
    private readonly label: string,
    private readonly unitSize: number,
    private readonly diskSize: number,
    private readonly sink: UnitSink,
  ) {}

  /** True once abort() was called: work still queued (compression results) should be dropped. */
  get aborted(): boolean {
    return this.state === "aborted";
  }

  /** Resolves once the units are stored and any sink holding `data` has let go of it. */
  async writeData(offset: number, data: Buffer): Promise<void> {
    const held: Promise<void>[] = [];
    await this.serialized(() => this.assembleData(offset, data, held));
    if (held.length > 0) await Promise.all(held);
  }

  /** A run that reads as zeros: nothing to store, but it may complete a unit assembled so far. */
  writeZeroes(offset: number, length: number): Promise<void> {
    return this.serialized(async () => {
      this.checkRange(offset, length);
      await this.skipTo(offset + length);
    });
  }

  /**
   * Completes the disk (anything never written reads as zeros), then runs `complete`, which writes what the
   * format keeps after the data (tables, header, footer). No call is accepted afterwards.
   */
  finish(complete: () => Promise<void>): Promise<void> {
    return this.serialized(async () => {
      await this.skipTo(this.diskSize);
      // Every unit's bytes are in the file before the format's tables say where they are.
      await Promise.all(this.holds);
      await complete();
      this.state = "finished";
    });
  }

  /**
   * Refuses every later call and resolves once a call in progress has settled, so nothing writes after the
   * target's abort() resolves (that call's error is its caller's already).
   */
  async abort(): Promise<void> {
    this.state = "aborted";
    await this.tail;
    await Promise.allSettled(this.holds);
  }

  private async assembleData(offset: number, data: Buffer, held: Promise<void>[]): Promise<void> {
    this.checkRange(offset, data.length);
    await this.skipTo(offset);
    const size = this.unitSize;
    let consumed = 0;
    while (consumed < data.length) {
      const within = this.position % size;
      if (within === 0) {
        const whole = Math.floor((data.length - consumed) / size);
        if (whole > 0) {
          const run = data.subarray(consumed, consumed + whole * size);
          const hold = await this.sink.storeUnits(this.position / size, run, true);
          if (hold) held.push(this.track(hold.released));
          consumed += run.length;
          this.position += run.length;
          continue;
        }
      }
      const unitEnd = this.unitEnd();
      const n = Math.min(unitEnd - this.position, data.length - consumed);
      this.partial ??= Buffer.alloc(size);
      data.copy(this.partial, within, consumed, consumed + n);
      consumed += n;
      this.position += n;
      if (this.position === unitEnd) await this.storePartial();
    }
  }

  /** Counts a hold until it is released; a failed one fails every later call, as any failure does. */
  private track(released: Promise<void>): Promise<void> {
    this.holds.add(released);
    const settle = () => void this.holds.delete(released);
    released.then(settle, (e: unknown) => {
      this.failure ??= e;
      settle();
    });
    return released;
  }

  private checkRange(offset: number, length: number): void {
    if (offset < this.position) {
      throw new Error(`${this.label} writes must be in increasing order: got offset ${offset} after ${this.position}`);
    }
    if (offset + length > this.diskSize) {
      throw new Error(`${this.label} write at ${offset} of ${length} bytes runs past the disk's end ${this.diskSize}`);
    }
  }

  /** Moves to `target` over bytes that read as zeros. */
  private async skipTo(target: number): Promise<void> {
    if (this.partial && target > this.position) {
      const unitEnd = this.unitEnd();
      this.position = Math.min(target, unitEnd);
      if (this.position === unitEnd) await this.storePartial();
    }
    // Whole zero units, and the start of a unit that got no data yet, need no memory at all.
    this.position = Math.max(this.position, target);
  }

  /** End of the unit `position` is inside, or the disk's end if that comes first. */
  private unitEnd(): number {
    const start = this.position - (this.position % this.unitSize);
    return Math.min(start + this.unitSize, this.diskSize);
  }

  private async storePartial(): Promise<void> {
    const unit = this.partial!;
    this.partial = undefined;
    // Our own buffer, never reused: a hold on it needs no waiting, but its failure must still count.
    const hold = await this.sink.storeUnits(Math.floor((this.position - 1) / this.unitSize), unit, false);
    if (hold) this.track(hold.released).catch(() => undefined);
  }

  private serialized(step: () => Promise<void>): Promise<void> {
    const run = this.tail.then(() => {
      if (this.failure !== undefined) throw this.failure;
      if (this.state !== "writing") throw new Error(`${this.label} target used after it was ${this.state}`);
      return step();
    });
    this.tail = run.catch((e: unknown) => {
      this.failure ??= e;
    });
    return run;
  }
}

/**
 * A target that stores whole units through a UnitAssembler: writeData, writeZeroes (explicit zeros and
 * unallocated runs alike: what the format leaves unstored reads as zeros), finish and abort are the
 * assembler's; the format supplies what it does with each unit and what it writes at the end.
 */
export abstract class UnitTarget implements ImageTarget, UnitSink {
  abstract readonly format: string;
  abstract readonly access: "random" | "sequential";
  readonly granularity: number;
  /** The assembler keeps calls in order whether or not the caller waits for each. */
  readonly pipelined = true;
  protected readonly assembler: UnitAssembler;

  constructor(label: string, unitSize: number, diskSize: number) {
    this.granularity = unitSize;
    this.assembler = new UnitAssembler(label, unitSize, diskSize, this);
  }

  abstract storeUnits(firstUnit: number, data: Buffer, borrowed: boolean): Promise<DataHold | void>;

  /** Writes what the format keeps after the data (tables, header, footer), once every unit was stored. */
  protected abstract complete(): Promise<void>;

  /** Drops work still queued (compression) when the target is aborted. */
  protected abandon(): void {}

  writeData(offset: number, data: Buffer): Promise<void> {
    return this.assembler.writeData(offset, data);
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.assembler.writeZeroes(offset, length);
  }

  finish(): Promise<void> {
    return this.assembler.finish(() => this.complete());
  }

  async abort(): Promise<void> {
    const settled = this.assembler.abort();
    this.abandon();
    // Let a call in progress settle so nothing writes after abort() resolves; its error is the caller's already.
    await settled;
  }
}

/**
 * The runs of consecutive units in `data` (units `firstUnit` on, each `unitSize` bytes) that are not all
 * zeros, as views of `data`; a run is also cut before every unit whose index is a multiple of `cutEvery`.
 */
export function* nonZeroUnitRuns(
  data: Buffer,
  unitSize: number,
  firstUnit: number,
  cutEvery = Infinity,
): Generator<{ readonly firstUnit: number; readonly data: Buffer }> {
  const count = data.length / unitSize;
  let runStart = -1;
  for (let i = 0; i < count; i++) {
    const zero = isAllZero(data.subarray(i * unitSize, (i + 1) * unitSize));
    const cut = (firstUnit + i) % cutEvery === 0;
    if (runStart >= 0 && (zero || cut)) {
      yield { firstUnit: firstUnit + runStart, data: data.subarray(runStart * unitSize, i * unitSize) };
      runStart = -1;
    }
    if (!zero && runStart < 0) runStart = i;
  }
  if (runStart >= 0) yield { firstUnit: firstUnit + runStart, data: data.subarray(runStart * unitSize) };
}
