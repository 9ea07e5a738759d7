/**
 * Writes a dynamic VHD in one pass. The layout is fixed up front because the disk size is known:
 *
 *   0      footer copy (512)
 *   512    dynamic header (1024)
 *   1536   BAT: 4 bytes per block, padded with 0xFF to whole sectors
 *   …      blocks, each a sector bitmap then the block's data, appended in disk order as data arrives
 *   end    footer (512)
 *
 * The pipeline hands over increasing, arbitrarily aligned ranges. A block is allocated when its first data byte
 * arrives; data goes straight to its place in the file (no assembly buffer, no copy), and the bitmap says every
 * sector is present: sectors of an allocated block that were never written are holes in the output file and read
 * as zeros, which is what they are. Blocks that receive no data stay unallocated (BAT 0xFFFFFFFF). The BAT,
 * header and both footers are written by finish(), which is why the output must be seekable.
 */
import type { ImageTarget } from "../../types.js";
import type { OutputFile } from "../../io/output-file.js";
import { settleAll } from "../../engine/source-ranges.js";
import { encodeVhdFooter, type VhdFooter } from "./vhd-footer.js";
import {
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_UNALLOCATED,
  bitmapBytesFor,
  encodeVhdDynamicHeader,
} from "./vhd-dynamic-header.js";

/** The BAT follows the footer copy and the dynamic header. */
const BAT_OFFSET = 512 + VHD_DYNAMIC_HEADER_SIZE;

export class VhdDynamicTarget implements ImageTarget {
  readonly format = "vhd";
  readonly access = "random" as const;
  /** Zero runs matter only as whole blocks: that is what stays unallocated. */
  readonly granularity: number;
  private readonly bat: Uint32Array;
  private readonly batBytes: number;
  private readonly bitmap: Buffer;
  private readonly bitmapBytes: number;
  /** File offset where the next allocated block goes (and, at the end, the footer). */
  private nextFree: number;
  /** End of the last range handed over: ranges must arrive in increasing order. */
  private cursor = 0;

  constructor(
    private readonly output: OutputFile,
    private readonly diskSize: number,
    private readonly blockSize: number,
    private readonly footer: Omit<VhdFooter, "checksum">,
  ) {
    this.granularity = blockSize;
    const entries = Math.ceil(diskSize / blockSize);
    this.bat = new Uint32Array(entries).fill(VHD_UNALLOCATED);
    this.batBytes = Math.ceil((entries * 4) / 512) * 512;
    this.bitmapBytes = bitmapBytesFor(blockSize);
    // Every sector of an allocated block is declared present; padding bits past the block's sectors are ones too.
    this.bitmap = Buffer.alloc(this.bitmapBytes, 0xff);
    this.nextFree = BAT_OFFSET + this.batBytes;
  }

  async writeData(offset: number, data: Buffer): Promise<void> {
    this.advance(offset, data.length);
    const end = offset + data.length;
    const writes: Promise<void>[] = [];
    for (let pos = offset; pos < end;) {
      const block = Math.floor(pos / this.blockSize);
      const blockStart = block * this.blockSize;
      const pieceEnd = Math.min(blockStart + this.blockSize, end);
      let entry = this.bat[block]!;
      if (entry === VHD_UNALLOCATED) {
        entry = this.allocate(block);
        writes.push(this.output.writeAt(this.bitmap, entry * 512));
      }
      const at = entry * 512 + this.bitmapBytes + (pos - blockStart);
      writes.push(this.output.writeAt(data.subarray(pos - offset, pieceEnd - offset), at));
      pos = pieceEnd;
    }
    // The writes go to disjoint places, so they may run in parallel; wait for all before reporting failure.
    await settleAll(writes);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    // Nothing to write: an unallocated block reads as zeros, and so does a never-written part of an allocated one.
    this.advance(offset, length);
  }

  async finish(): Promise<void> {
    // Big-endian entries; the padding to a whole sector stays 0xFF like unallocated entries.
    const bat = Buffer.alloc(this.batBytes, 0xff);
    this.bat.forEach((entry, i) => bat.writeUInt32BE(entry, i * 4));
    const footer = encodeVhdFooter(this.footer);
    const header = encodeVhdDynamicHeader(BAT_OFFSET, this.bat.length, this.blockSize);
    await this.output.writeAt(bat, BAT_OFFSET);
    await this.output.writeAt(header, 512);
    await this.output.writeAt(footer, 0);
    // The footer after the last block also gives the file its full length when that block ends in a hole.
    await this.output.writeAt(footer, this.nextFree);
  }

  async abort(): Promise<void> {}

  private allocate(block: number): number {
    const sector = this.nextFree / 512;
    if (sector >= VHD_UNALLOCATED) throw new Error("vhd: the image grew past the 2 TiB a VHD block table can address");
    this.bat[block] = sector;
    this.nextFree += this.bitmapBytes + this.blockSize;
    return sector;
  }

  private advance(offset: number, length: number): void {
    if (offset < this.cursor || offset + length > this.diskSize) {
      throw new Error(
        `vhd: write at ${offset}+${length} is out of order or beyond the disk (next expected at or after ` +
          `${this.cursor}, disk ${this.diskSize} bytes)`,
      );
    }
    this.cursor = offset + length;
  }
}
