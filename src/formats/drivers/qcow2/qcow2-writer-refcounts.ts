/**
 * Reference counts of a qcow2 image being written front to back, kept one refcount block at a time.
 *
 * Host clusters are only ever appended, so once the writer has moved past a cluster its count is final, and
 * a refcount block whose clusters are all final can go to the file right away. Only the blocks around the
 * write position stay in memory (plus one table entry per block written), so a terabyte image costs no more
 * memory than a small one.
 *
 * Counts follow `qemu-img check`: a cluster holding plain data or metadata counts 1; a cluster holding
 * compressed data counts once for every compressed cluster whose bytes (rounded up to whole 512-byte
 * sectors, as the L2 descriptor records them) touch it.
 */

/** Largest 16-bit refcount. */
export const MAX_REFCOUNT = 0xffff;
const ENTRY_BYTES = 2;

export class RefcountLedger {
  /** Refcount entries per block. */
  readonly entriesPerBlock: number;
  /** Blocks not yet written, by block index. */
  private readonly pending = new Map<number, Buffer>();
  /** Host offsets of the blocks written so far: the refcount table, in block order. */
  private readonly written: number[] = [];

  constructor(private readonly clusterSize: number) {
    this.entriesPerBlock = clusterSize / ENTRY_BYTES;
  }

  /** Adds one reference to each of `count` clusters starting at `firstCluster`. */
  addClusters(firstCluster: number, count: number): void {
    for (let cluster = firstCluster; cluster < firstCluster + count; cluster++) this.increment(cluster);
  }

  /** Adds one reference to every cluster that the host byte range [start, end) touches. */
  addByteRange(start: number, end: number): void {
    const first = Math.floor(start / this.clusterSize);
    const last = Math.floor((end - 1) / this.clusterSize);
    this.addClusters(first, last - first + 1);
  }

  get(cluster: number): number {
    const block = this.pending.get(Math.floor(cluster / this.entriesPerBlock));
    return block ? block.readUInt16BE((cluster % this.entriesPerBlock) * ENTRY_BYTES) : 0;
  }

  /** Blocks written so far; every cluster below `blocksWritten * entriesPerBlock` is accounted for on disk. */
  get blocksWritten(): number {
    return this.written.length;
  }

  /**
   * The next block to write if all its clusters lie below `finalClusters` (counts no longer change there),
   * removed from memory; the caller writes it and reports where with `recordWritten`.
   */
  takeFinishedBlock(finalClusters: number): Buffer | undefined {
    const index = this.written.length;
    if ((index + 1) * this.entriesPerBlock > finalClusters) return undefined;
    return this.takeBlock(index);
  }

  /** The block at `index` as it stands, removed from memory (a block nothing touched is all zeros). */
  takeBlock(index: number): Buffer {
    const block = this.pending.get(index) ?? Buffer.alloc(this.clusterSize);
    this.pending.delete(index);
    return block;
  }

  recordWritten(index: number, hostOffset: number): void {
    if (index !== this.written.length) throw new Error(`refcount block ${index} written out of order`);
    this.written.push(hostOffset);
  }

  /** The refcount table, `clusters` clusters long, listing every block written. */
  encodeTable(clusters: number): Buffer {
    const table = Buffer.alloc(clusters * this.clusterSize);
    this.written.forEach((offset, i) => table.writeBigUInt64BE(BigInt(offset), i * 8));
    return table;
  }

  private increment(cluster: number): void {
    const index = Math.floor(cluster / this.entriesPerBlock);
    if (index < this.written.length)
      throw new Error(`refcount of host cluster ${cluster} changed after it was written`);
    let block = this.pending.get(index);
    if (!block) {
      block = Buffer.alloc(this.clusterSize);
      this.pending.set(index, block);
    }
    const at = (cluster % this.entriesPerBlock) * ENTRY_BYTES;
    const count = block.readUInt16BE(at);
    if (count >= MAX_REFCOUNT) throw new Error(`refcount of host cluster ${cluster} would overflow 16 bits`);
    block.writeUInt16BE(count + 1, at);
  }
}
