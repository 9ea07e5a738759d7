/**
 * Turns the convert pipeline's increasing byte ranges, which need not respect grain boundaries, into whole
 * grains for the VMDK writers. Runs of whole grains pass through as views of the caller's buffer (no copy);
 * a grain arriving in pieces is assembled in a buffer of its own. Bytes never written read as zeros, and so
 * does the padding after the disk's last byte when its size is not a multiple of the grain.
 */

export interface GrainSink {
  /**
   * Whole grains from `firstGrain` on (`data` is a multiple of the grain size). `borrowed` data is the caller's
   * and must not be kept once the promise resolves; other data may be kept.
   */
  storeGrains(firstGrain: number, data: Buffer, borrowed: boolean): Promise<void>;
}

export class GrainAssembler {
  /** Disk offset up to which everything has been received. */
  private position = 0;
  /** The grain `position` is inside, once data has arrived for it. */
  private partial: Buffer | undefined;

  constructor(
    private readonly grainSize: number,
    private readonly diskSize: number,
    private readonly sink: GrainSink,
  ) {}

  async writeData(offset: number, data: Buffer): Promise<void> {
    this.checkRange(offset, data.length);
    await this.skipTo(offset);
    const size = this.grainSize;
    let consumed = 0;
    while (consumed < data.length) {
      const within = this.position % size;
      if (within === 0) {
        const whole = Math.floor((data.length - consumed) / size);
        if (whole > 0) {
          const run = data.subarray(consumed, consumed + whole * size);
          await this.sink.storeGrains(this.position / size, run, true);
          consumed += run.length;
          this.position += run.length;
          continue;
        }
      }
      const grainEnd = this.grainEnd();
      const n = Math.min(grainEnd - this.position, data.length - consumed);
      this.partial ??= Buffer.alloc(size);
      data.copy(this.partial, within, consumed, consumed + n);
      consumed += n;
      this.position += n;
      if (this.position === grainEnd) await this.storePartial();
    }
  }

  /** A run that reads as zeros: nothing to store, but it may complete a grain assembled so far. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    await this.skipTo(offset + length);
  }

  /** Completes the disk; anything never written reads as zeros. */
  async finish(): Promise<void> {
    await this.skipTo(this.diskSize);
  }

  private checkRange(offset: number, length: number): void {
    if (offset < this.position) {
      throw new Error(`vmdk writes must be in increasing order: got offset ${offset} after ${this.position}`);
    }
    if (offset + length > this.diskSize) {
      throw new Error(`vmdk write at ${offset} of ${length} bytes runs past the disk's end ${this.diskSize}`);
    }
  }

  /** Moves to `target` over bytes that read as zeros. */
  private async skipTo(target: number): Promise<void> {
    if (this.partial && target > this.position) {
      const grainEnd = this.grainEnd();
      this.position = Math.min(target, grainEnd);
      if (this.position === grainEnd) await this.storePartial();
    }
    // Whole zero grains, and the start of a grain that got no data yet, need no memory at all.
    this.position = Math.max(this.position, target);
  }

  /** End of the grain `position` is inside, or the disk's end if that comes first. */
  private grainEnd(): number {
    const start = this.position - (this.position % this.grainSize);
    return Math.min(start + this.grainSize, this.diskSize);
  }

  private async storePartial(): Promise<void> {
    const grain = this.partial!;
    this.partial = undefined;
    await this.sink.storeGrains(Math.floor((this.position - 1) / this.grainSize), grain, false);
  }
}
