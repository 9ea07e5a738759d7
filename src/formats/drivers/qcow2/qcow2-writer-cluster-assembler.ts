/**
 * Turns the convert pipeline's byte ranges, which need not respect cluster boundaries, into whole guest
 * clusters. Aligned runs pass through as views of the caller's buffer (no copy); a cluster that arrives in
 * pieces is assembled in a buffer of its own. Parts of a cluster that were never written read as zeros,
 * and so does the padding after the disk's last byte when its size is not a multiple of the cluster size.
 */

export interface ClusterSink {
  /**
   * Whole guest clusters from `firstCluster` on; `data` is a multiple of the cluster size. It may be a view of
   * the caller's buffer, so it must not be kept once the promise resolves.
   */
  storeClusters(firstCluster: number, data: Buffer): Promise<void>;
}

export class ClusterAssembler {
  /** Guest offset up to which everything has been received. */
  private position = 0;
  /** The cluster `position` is inside, when data has arrived for it (zeros arrived otherwise). */
  private partial: Buffer | undefined;

  constructor(
    private readonly clusterSize: number,
    private readonly diskSize: number,
    private readonly sink: ClusterSink,
  ) {}

  async writeData(offset: number, data: Buffer): Promise<void> {
    this.checkRange(offset, data.length);
    await this.skipTo(offset);
    const size = this.clusterSize;
    let consumed = 0;
    while (consumed < data.length) {
      const within = this.position % size;
      if (within === 0) {
        const whole = Math.floor((data.length - consumed) / size);
        if (whole > 0) {
          const run = data.subarray(consumed, consumed + whole * size);
          await this.sink.storeClusters(this.position / size, run);
          consumed += run.length;
          this.position += run.length;
          continue;
        }
      }
      const clusterEnd = this.clusterEnd();
      const n = Math.min(clusterEnd - this.position, data.length - consumed);
      this.partial ??= Buffer.alloc(size);
      data.copy(this.partial, within, consumed, consumed + n);
      consumed += n;
      this.position += n;
      if (this.position === clusterEnd) await this.storePartial();
    }
  }

  /** A run that reads as zeros: nothing to store, but it may complete a cluster assembled so far. */
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
      throw new Error(`qcow2 writes must be in increasing order: got offset ${offset} after ${this.position}`);
    }
    if (offset + length > this.diskSize) {
      throw new Error(`qcow2 write at ${offset} of ${length} bytes runs past the disk's end ${this.diskSize}`);
    }
  }

  /** Moves to `target` over bytes that read as zeros. */
  private async skipTo(target: number): Promise<void> {
    if (this.partial && target > this.position) {
      const clusterEnd = this.clusterEnd();
      this.position = Math.min(target, clusterEnd);
      if (this.position === clusterEnd) await this.storePartial();
    }
    // Whole zero clusters, and the start of a cluster that got no data yet, need no memory at all.
    this.position = Math.max(this.position, target);
  }

  /** End of the cluster `position` is inside, or the disk's end if that comes first. */
  private clusterEnd(): number {
    const start = this.position - (this.position % this.clusterSize);
    return Math.min(start + this.clusterSize, this.diskSize);
  }

  private async storePartial(): Promise<void> {
    const cluster = this.partial!;
    this.partial = undefined;
    await this.sink.storeClusters(Math.floor((this.position - 1) / this.clusterSize), cluster);
  }
}
