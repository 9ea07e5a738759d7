/**
 * The host file of a qcow2 image being written, and where everything goes in it.
 *
 * Layout, chosen so the image can be written in one pass with bounded memory whatever its size:
 *
 *   cluster 0         the header, written last (only then are the table offsets known)
 *   clusters 1..      data clusters, in guest order, each L2 table right after the last cluster it maps,
 *                     and each refcount block as soon as the counts it holds are final
 *   at the end       the L1 table, the remaining refcount blocks, then the refcount table
 *
 * Every cluster is appended, never rewritten, so nothing is read back and the file has no holes: data stays
 * in guest order (good for later sequential reads), and refcounts are 1 everywhere except where compressed
 * clusters share host clusters. Compressed clusters are packed byte after byte like qemu packs them, spilling
 * into the next host cluster when that one is free, so a host cluster holds several of them.
 */
import type { OutputFile } from "../../io/output-file.js";
import { WriteCoalescer } from "./qcow2-writer-coalescer.js";
import { MAX_REFCOUNT, RefcountLedger } from "./qcow2-writer-refcounts.js";

/** Compressed cluster lengths are recorded in whole 512-byte sectors. */
export const COMPRESSED_SECTOR = 512;
/** qemu refuses to open an image whose refcount table exceeds 8 MiB. */
const MAX_REFCOUNT_TABLE_BYTES = 8 * 2 ** 20;

export interface Qcow2MetadataLayout {
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
}

export class Qcow2HostFile {
  private readonly writer: WriteCoalescer;
  private readonly refcounts: RefcountLedger;
  /** Host bytes allocated so far; always a whole number of clusters. */
  private end: number;
  /** The host cluster compressed bytes are being packed into (-1: none) and how much of it is used. */
  private packStart = -1;
  private packUsed = 0;
  /** Its content, with room for one compressed cluster spilling over into the next host cluster. */
  private packBuffer: Buffer | undefined;

  constructor(
    output: OutputFile,
    private readonly clusterSize: number,
  ) {
    this.writer = new WriteCoalescer(output);
    this.refcounts = new RefcountLedger(clusterSize);
    this.end = clusterSize;
    this.refcounts.addClusters(0, 1); // the header cluster
  }

  /**
   * Appends whole clusters (data or an L2 table) and returns their host offset. The caller may reuse `data`
   * once this resolves.
   */
  async appendClusters(data: Buffer): Promise<number> {
    const { at, landed } = await this.appendClustersHeld(data);
    await landed;
    return at;
  }

  /**
   * As appendClusters, but resolves once the clusters have their place and their write is under way: `data`
   * must stay unchanged until `landed` resolves.
   */
  async appendClustersHeld(data: Buffer): Promise<{ readonly at: number; readonly landed: Promise<void> }> {
    // Refcount blocks are written only up to the packing cluster, so it must not fall far behind the end of
    // the file (a long stretch of incompressible clusters would otherwise pile blocks up in memory). Closing
    // it here wastes at most its unused tail once per refcount block's worth of file.
    if (
      this.packStart >= 0 &&
      this.refcountBlockOf(this.end + data.length - 1) !== this.refcountBlockOf(this.packStart)
    ) {
      await this.closePack();
    }
    const at = this.allocate(data.length / this.clusterSize);
    const { landed } = await this.writer.writeHeld(at, data);
    await this.writeFinishedRefcountBlocks();
    return { at, landed };
  }

  /** Packs one compressed cluster (shorter than a cluster) and returns the host byte offset it starts at. */
  async appendCompressed(data: Buffer): Promise<number> {
    const size = this.clusterSize;
    if (this.packStart >= 0) {
      const fits = this.packUsed + data.length <= size;
      // Compressed bytes may run on into the next host cluster only when that is the next one allocated.
      const nextClusterFree = this.packStart + size === this.end;
      const countFull = this.refcounts.get(this.packStart / size) >= MAX_REFCOUNT;
      if (countFull || (!fits && !nextClusterFree)) await this.closePack();
    }
    if (this.packStart < 0) {
      this.packBuffer ??= Buffer.alloc(2 * size);
      this.packStart = this.end;
      this.packUsed = 0;
      this.end += size;
    }
    const buffer = this.packBuffer!;
    const at = this.packStart + this.packUsed;
    if (this.packUsed + data.length > size) this.end += size; // the spill-over cluster, contiguous by the check above
    data.copy(buffer, this.packUsed);
    this.packUsed += data.length;
    // Count the range as a reader will see it: through the end of its last sector.
    this.refcounts.addByteRange(at, roundUp(at + data.length, COMPRESSED_SECTOR));

    if (this.packUsed >= size) {
      await this.writer.write(this.packStart, buffer.subarray(0, size));
      const carried = this.packUsed - size;
      buffer.copyWithin(0, size, this.packUsed);
      buffer.fill(0, carried);
      this.packStart = carried > 0 ? this.packStart + size : -1;
      this.packUsed = carried;
      await this.writeFinishedRefcountBlocks();
    }
    return at;
  }

  /**
   * Writes the L1 table and the remaining refcount structures after everything else; returns where they went.
   * Nothing may be appended afterwards except the header.
   */
  async finish(l1Table: Buffer): Promise<Qcow2MetadataLayout> {
    const size = this.clusterSize;
    if (this.packStart >= 0) await this.closePack();

    let l1TableOffset: number | undefined;
    if (l1Table.length > 0) {
      const l1Padded = Buffer.alloc(Math.ceil(l1Table.length / size) * size);
      l1Table.copy(l1Padded);
      l1TableOffset = await this.appendClusters(l1Padded);
    }

    // The last refcount blocks and the table must count themselves too: grow both until they cover the file.
    const firstCluster = this.end / size;
    const blocksBefore = this.refcounts.blocksWritten;
    let blocks = 0;
    let tableClusters = 0;
    for (;;) {
      const totalBlocks = Math.ceil((firstCluster + blocks + tableClusters) / this.refcounts.entriesPerBlock);
      const nextBlocks = totalBlocks - blocksBefore;
      const nextTableClusters = Math.ceil((totalBlocks * 8) / size);
      if (nextBlocks === blocks && nextTableClusters === tableClusters) break;
      blocks = nextBlocks;
      tableClusters = nextTableClusters;
    }
    if (tableClusters * size > MAX_REFCOUNT_TABLE_BYTES) {
      throw new Error(
        `the qcow2 refcount table would need ${tableClusters * size} bytes, over qemu's 8 MiB limit; use a larger cluster_size`,
      );
    }
    this.allocate(blocks + tableClusters);
    for (let i = 0; i < blocks; i++) {
      const at = (firstCluster + i) * size;
      const block = this.refcounts.takeBlock(blocksBefore + i);
      this.refcounts.recordWritten(blocksBefore + i, at);
      await this.writer.write(at, block);
    }
    const refcountTableOffset = (firstCluster + blocks) * size;
    await this.writer.write(refcountTableOffset, this.refcounts.encodeTable(tableClusters));
    // An empty disk has an empty L1 table: nothing is allocated for it (an unreferenced cluster would be a
    // leak), and its offset points just past the file, as qemu-img create does.
    return { l1TableOffset: l1TableOffset ?? this.end, refcountTableOffset, refcountTableClusters: tableClusters };
  }

  /** Writes the header cluster and waits until every byte is in the file. */
  async writeHeader(header: Buffer): Promise<void> {
    await this.writer.write(0, header);
    await this.writer.drain();
  }

  private refcountBlockOf(hostOffset: number): number {
    return Math.floor(hostOffset / this.clusterSize / this.refcounts.entriesPerBlock);
  }

  private allocate(clusters: number): number {
    const at = this.end;
    this.end += clusters * this.clusterSize;
    this.refcounts.addClusters(at / this.clusterSize, clusters);
    return at;
  }

  /** Writes out the partly filled compressed-packing cluster; its unused tail stays zero. */
  private async closePack(): Promise<void> {
    await this.writer.write(this.packStart, this.packBuffer!.subarray(0, this.clusterSize));
    this.packBuffer!.fill(0);
    this.packStart = -1;
    this.packUsed = 0;
    await this.writeFinishedRefcountBlocks();
  }

  /** Appends every refcount block whose counts can no longer change. */
  private async writeFinishedRefcountBlocks(): Promise<void> {
    for (;;) {
      // Below the packing cluster (if any) and below the end of the file, nothing will be counted again.
      const settled = this.packStart >= 0 ? Math.min(this.packStart, this.end) : this.end;
      const index = this.refcounts.blocksWritten;
      const block = this.refcounts.takeFinishedBlock(settled / this.clusterSize);
      if (!block) return;
      const at = this.allocate(1);
      this.refcounts.recordWritten(index, at);
      await this.writer.write(at, block);
    }
  }
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
