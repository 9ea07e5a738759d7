/**
 * The guest-to-host mapping of a qcow2 image being written: the L1 table (kept whole in memory; a 1 TiB disk
 * with 64 KiB clusters needs 16 KiB of it) and the one L2 table being filled. Clusters arrive in guest order,
 * so when a cluster beyond the current L2 table's range arrives, that table is complete and is appended to
 * the file; an L2 table that would map nothing is never written (its L1 entry stays 0: unallocated).
 * Unmapped clusters keep L2 entry 0, which reads as zeros since these images have no backing file.
 */
import { COMPRESSED_SECTOR, type Qcow2HostFile } from "./qcow2-writer-host-file.js";

/** Bit 63 of L1 and L2 entries: the cluster's refcount is exactly 1 (always true for what we write). */
const COPIED_HIGH = 0x80000000;
/** Bit 62 of an L2 entry: compressed cluster. */
const COMPRESSED_HIGH = 0x40000000;
const TWO_32 = 2 ** 32;

export class Qcow2Mapping {
  /** Entries per L2 table. */
  readonly l2Entries: number;
  readonly l1Table: Buffer;
  private readonly l2Table: Buffer;
  /** L1 index of the L2 table in `l2Table`, and whether anything has been mapped in it yet. */
  private l2Index = 0;
  private l2Used = false;
  /** Bits used by the host offset in a compressed cluster descriptor; the sector count sits above them. */
  private readonly compressedOffsetBits: number;

  constructor(
    private readonly host: Qcow2HostFile,
    private readonly clusterSize: number,
    clusterBits: number,
    l1Entries: number,
  ) {
    this.l2Entries = clusterSize / 8;
    this.l1Table = Buffer.alloc(l1Entries * 8);
    this.l2Table = Buffer.alloc(clusterSize);
    this.compressedOffsetBits = 62 - (clusterBits - 8);
  }

  /** Maps `count` guest clusters from `firstCluster` on to consecutive host clusters from `hostOffset`. */
  async mapStandard(firstCluster: number, count: number, hostOffset: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const host = hostOffset + i * this.clusterSize;
      await this.setEntry(firstCluster + i, (Math.floor(host / TWO_32) | COPIED_HIGH) >>> 0, host >>> 0);
    }
  }

  /** Maps a guest cluster to compressed bytes at host byte `hostOffset`, `length` bytes long. */
  async mapCompressed(guestCluster: number, hostOffset: number, length: number): Promise<void> {
    const firstSector = Math.floor(hostOffset / COMPRESSED_SECTOR);
    const lastSector = Math.floor((hostOffset + length - 1) / COMPRESSED_SECTOR);
    // Descriptor: host byte offset in the low bits, then the count of sectors after the first one.
    const sectorsAfterFirst = lastSector - firstSector;
    const high =
      Math.floor(hostOffset / TWO_32) + sectorsAfterFirst * 2 ** (this.compressedOffsetBits - 32) + COMPRESSED_HIGH;
    await this.setEntry(guestCluster, high >>> 0, hostOffset >>> 0);
  }

  /** Appends the last L2 table if it maps anything; the L1 table is then complete. */
  async finish(): Promise<void> {
    await this.writeL2Table();
  }

  private async setEntry(guestCluster: number, high: number, low: number): Promise<void> {
    const index = Math.floor(guestCluster / this.l2Entries);
    if (index !== this.l2Index) {
      if (index < this.l2Index) throw new Error(`guest cluster ${guestCluster} mapped out of order`);
      await this.writeL2Table();
      this.l2Index = index;
    }
    const at = (guestCluster % this.l2Entries) * 8;
    this.l2Table.writeUInt32BE(high, at);
    this.l2Table.writeUInt32BE(low, at + 4);
    this.l2Used = true;
  }

  private async writeL2Table(): Promise<void> {
    if (!this.l2Used) return;
    const offset = await this.host.appendClusters(this.l2Table);
    this.l1Table.writeUInt32BE((Math.floor(offset / TWO_32) | COPIED_HIGH) >>> 0, this.l2Index * 8);
    this.l1Table.writeUInt32BE(offset >>> 0, this.l2Index * 8 + 4);
    this.l2Table.fill(0);
    this.l2Used = false;
  }
}
