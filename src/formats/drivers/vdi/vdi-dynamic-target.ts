/**
 * Writes a dynamic VDI: only blocks holding data are stored, appended to the data area in disk order, so blocks
 * that are consecutive on the disk are consecutive in the file and a run of them goes out in one write straight
 * from the caller's buffer. A block the pipeline covers in several pieces (runs are not block-aligned) is
 * assembled in a scratch buffer and stored when its last byte has arrived, padded with zeros past the end of the
 * disk. Blocks that received no data stay unallocated. Header and block map are written by finish(): until then
 * the file is not a valid image, which suits a temporary output the caller removes on failure.
 *
 * Pipelined (ImageTarget): calls are applied in order, and runs of whole blocks are written straight from the
 * caller's buffer with several writes in flight; a call's promise resolves once its bytes are in the file.
 */
import { UsageError } from "../../errors.js";
import type { OutputFile } from "../../io/output-file.js";
import type { ImageTarget } from "../../types.js";
import { WriteWindow } from "../../io/write-window.js";
import { emptyBlockMap, encodeVdiMetadata, storedBlockOffset, type VdiLayout } from "./vdi-layout.js";

/** The block being assembled from pieces. */
interface OpenBlock {
  readonly index: number;
  /** Null until the first data byte arrives: a block covered only by zero runs needs no buffer at all. */
  data: Buffer | null;
}

export class VdiDynamicTarget implements ImageTarget {
  readonly format = "vdi";
  readonly access = "random";
  /** A block is the unit a dynamic VDI can leave out, so zero detection works block by block. */
  readonly granularity: number;
  readonly pipelined = true;

  private readonly blockMap: Buffer;
  private readonly writes: WriteWindow;
  /** The first write that failed: every later call reports it. */
  private failure: unknown;
  /** Data-area index the next stored block gets. */
  private storedBlocks = 0;
  /** End of what has been handed to this target so far: calls must continue exactly from here. */
  private covered = 0;
  private open: OpenBlock | null = null;
  /** Reused for every assembled block; safe because operations run one at a time (see `serial`). */
  private scratch: Buffer | null = null;
  /** Calls are chained so they run in order even if a caller does not wait for the previous one. */
  private serial: Promise<void> = Promise.resolve();

  constructor(
    private readonly output: OutputFile,
    private readonly layout: VdiLayout,
  ) {
    if (!output.seekable) {
      throw new UsageError(
        "vdi: a dynamic VDI cannot be written to a sequential output (its block map is known only at the end); " +
          "use -o static=on to stream a VDI",
      );
    }
    this.granularity = layout.blockSize;
    this.blockMap = emptyBlockMap(layout);
    this.writes = new WriteWindow(output);
  }

  /** Resolves once the data is in the file: the writes it started may still be running when the next call starts. */
  async writeData(offset: number, data: Buffer): Promise<void> {
    const landing: Promise<void>[] = [];
    await this.enqueue(() => this.cover(offset, data.length, data, landing));
    await Promise.all(landing);
  }

  /**
   * Both kinds of zero run are left unallocated: without a parent image an unallocated block reads as zeros,
   * and it is what VirtualBox and qemu record for blocks never written.
   */
  writeZeroes(offset: number, length: number): Promise<void> {
    return this.enqueue(() => this.cover(offset, length, null, []));
  }

  async finish(): Promise<void> {
    await this.serial;
    await this.writes.drain();
    if (this.covered !== this.layout.diskSize || this.open) {
      throw new Error(`vdi: finish() after ${this.covered} of ${this.layout.diskSize} bytes were written`);
    }
    const fileEnd = storedBlockOffset(this.layout, this.storedBlocks);
    // Extends the file over the data area when no block (or only a short last one) was written: the last stored
    // block must be whole, as readers address whole blocks.
    if (this.output.position < fileEnd) await this.output.truncate(fileEnd);
    await this.output.writeAt(encodeVdiMetadata(this.layout, this.blockMap, this.storedBlocks), 0);
  }

  async abort(): Promise<void> {
    await this.serial.catch(() => undefined);
    await this.writes.settle();
    this.scratch = null;
  }

  private enqueue(operation: () => Promise<void>): Promise<void> {
    const next = this.serial.then(operation);
    this.serial = next;
    return next;
  }

  /**
   * Takes the disk range [offset, offset + length): `data` holds its bytes, or null when it reads as zeros.
   * Writes straight from `data` are still under way when this resolves; their promises go to `landing`.
   */
  private async cover(offset: number, length: number, data: Buffer | null, landing: Promise<void>[]): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (offset !== this.covered || offset + length > this.layout.diskSize) {
      throw new Error(
        `vdi: write at ${offset}+${length} does not continue the disk at ${this.covered} (size ${this.layout.diskSize})`,
      );
    }
    this.covered += length;
    const blockSize = this.layout.blockSize;
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const block = Math.floor(pos / blockSize);
      const blockStart = block * blockSize;
      const blockEnd = Math.min(blockStart + blockSize, this.layout.diskSize);
      if (pos === blockStart && end >= blockEnd) {
        // Whole blocks: data goes out directly from the caller's buffer, zeros are simply not stored.
        const wholeEnd = this.lastWholeBlockEnd(pos, end);
        if (data)
          landing.push((await this.startWholeBlocks(block, data.subarray(pos - offset, wholeEnd - offset))).landed);
        pos = wholeEnd;
        continue;
      }
      const pieceEnd = Math.min(end, blockEnd);
      this.open ??= { index: block, data: null };
      if (data) {
        if (!this.open.data) {
          this.scratch ??= Buffer.allocUnsafe(blockSize);
          this.open.data = this.scratch.fill(0);
        }
        data.copy(this.open.data, pos - blockStart, pos - offset, pieceEnd - offset);
      }
      pos = pieceEnd;
      if (pos === blockEnd) {
        const assembled = this.open.data;
        this.open = null;
        // The scratch buffer is reused for the next block: this write must land first.
        if (assembled) await (await this.startWholeBlocks(block, assembled)).landed;
      }
    }
  }

  /** End of the last block that [pos, end) covers completely (pos is a block start). */
  private lastWholeBlockEnd(pos: number, end: number): number {
    // The disk's last block may be short: reaching the end of the disk completes it.
    if (end === this.layout.diskSize) return end;
    return pos + Math.floor((end - pos) / this.layout.blockSize) * this.layout.blockSize;
  }

  /**
   * Appends blocks first..first+n-1 to the data area in one write; `bytes` holds them back to back (the last
   * may be short at the end of the disk; finish() pads the file). Resolves once the write is under way; `bytes`
   * must stay unchanged until `landed`.
   */
  private async startWholeBlocks(first: number, bytes: Buffer): Promise<{ readonly landed: Promise<void> }> {
    const count = Math.ceil(bytes.length / this.layout.blockSize);
    const at = storedBlockOffset(this.layout, this.storedBlocks);
    for (let i = 0; i < count; i++) this.blockMap.writeUInt32LE(this.storedBlocks + i, (first + i) * 4);
    this.storedBlocks += count;
    const { landed } = await this.writes.start(bytes, at);
    landed.catch((e: unknown) => (this.failure ??= e));
    return { landed };
  }
}
