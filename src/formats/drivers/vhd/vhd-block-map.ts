/**
 * Where a dynamic VHD keeps each byte of its disk: the block allocation table (BAT) names, per block, the sector
 * at which the block's sector bitmap starts, and the block's data follows the bitmap. A sector whose bitmap bit is
 * 0 is not in the image and reads as zeros (bits are most-significant first: sector 0 of a block is bit 7 of
 * byte 0). Writers almost always set whole bitmaps to ones, so a bitmap is classified once as full, empty or
 * partial, and only partial ones are kept, in a small LRU.
 *
 * Where qemu-img reads the same file differently, on purpose:
 * - Sector bitmaps. qemu ignores them (its reader takes every sector of an allocated block as present); we honour
 *   them, as the specification and Virtual PC do: a sector whose bit is 0 was never written, and the bytes stored
 *   for it are whatever the writer left there. A block with a partial bitmap is named in details()' warnings.
 * - Blocks beyond the disk. qemu reads a disk of the size the footer declares and never looks at the table past
 *   it, so a footer declaring a smaller disk (0 bytes, with valid checksums) silently drops allocated blocks. Data
 *   the file holds past the declared size is an error here, not a truncation.
 */
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LIMITS } from "../../limits.js";
import { FileRunMerger, type FileRun } from "../../engine/source-ranges.js";
import { VHD_UNALLOCATED, bitmapBytesFor, type VhdDynamicHeader } from "./vhd-dynamic-header.js";

export interface VhdRun extends FileRun {
  readonly kind: "data" | "unallocated";
}

/** What a block's sector bitmap says, learnt the first time the block is read. */
const BitmapState = { Unknown: 0, Full: 1, Empty: 2, Partial: 3 } as const;
type BitmapState = (typeof BitmapState)[keyof typeof BitmapState];

/** Bytes of partial bitmaps kept in memory. */
const PARTIAL_BITMAP_CACHE_BYTES = 4 * 2 ** 20;

export class VhdBlockMap {
  readonly bitmapBytes: number;
  readonly allocatedBlocks: number;
  private readonly states: Uint8Array;
  private readonly partial = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<BitmapState>>();
  private readonly maxPartial: number;
  private readonly sectorsPerBlock: number;

  private constructor(
    private readonly file: ImageInput,
    readonly virtualSize: number,
    readonly blockSize: number,
    /** Sector offset of each block's bitmap, or VHD_UNALLOCATED. */
    private readonly bat: Uint32Array,
  ) {
    this.bitmapBytes = bitmapBytesFor(blockSize);
    this.sectorsPerBlock = blockSize / 512;
    this.states = new Uint8Array(bat.length);
    this.maxPartial = Math.max(16, Math.floor(PARTIAL_BITMAP_CACHE_BYTES / this.bitmapBytes));
    let allocated = 0;
    for (const entry of bat) if (entry !== VHD_UNALLOCATED) allocated++;
    this.allocatedBlocks = allocated;
  }

  /**
   * Reads the block allocation table and checks that every allocated block lies inside the file, and inside the
   * disk: a block allocated past `declaredSize` (the largest size the footer states, by current size or
   * geometry) holds data the disk would lose. A larger table, as some writers keep for later growth, is read
   * whole for that check; only the entries of the disk's `virtualSize` are kept.
   */
  static async load(
    file: ImageInput,
    header: VhdDynamicHeader,
    virtualSize: number,
    declaredSize: number,
  ): Promise<VhdBlockMap> {
    const path = file.path;
    const needed = Math.ceil(virtualSize / header.blockSize);
    if (header.maxTableEntries * 4 > LIMITS.maxTableBytes) {
      throw new CorruptImageError(
        `${path}: VHD block allocation table of ${header.maxTableEntries} entries (${header.maxTableEntries * 4} bytes) ` +
          `exceeds the ${LIMITS.maxTableBytes}-byte limit`,
      );
    }
    if (header.maxTableEntries < needed) {
      throw new CorruptImageError(
        `${path}: VHD block allocation table is too small (max table entries ${header.maxTableEntries}): ` +
          `a ${virtualSize}-byte disk of ${header.blockSize}-byte blocks needs ${needed}`,
      );
    }
    // Entries past the end of the file (a table declared larger than what was ever written) allocate nothing.
    const inFile = Math.min(header.maxTableEntries, Math.floor(Math.max(0, file.size - header.tableOffset) / 4));
    const raw = await file.readExact(
      header.tableOffset,
      Math.max(needed, inFile) * 4,
      undefined,
      "VHD block allocation table",
    );
    const declaredBlocks = Math.ceil(declaredSize / header.blockSize);
    for (let block = declaredBlocks; block < inFile; block++) {
      const entry = raw.readUInt32BE(block * 4);
      if (entry === VHD_UNALLOCATED) continue;
      throw new CorruptImageError(
        `${path}: VHD block ${block} (disk offset ${block * header.blockSize}) is allocated, but the footer ` +
          `declares a ${declaredSize}-byte disk: the data past the declared size would be lost; the footer's size ` +
          "or the block allocation table is wrong",
      );
    }
    const bat = new Uint32Array(needed);
    for (let i = 0; i < needed; i++) bat[i] = raw.readUInt32BE(i * 4);
    const map = new VhdBlockMap(file, virtualSize, header.blockSize, bat);
    for (let block = 0; block < needed; block++) {
      const entry = bat[block]!;
      if (entry === VHD_UNALLOCATED) continue;
      const inDisk = Math.min(header.blockSize, virtualSize - block * header.blockSize);
      const end = entry * 512 + map.bitmapBytes + inDisk;
      if (end > file.size) {
        throw new CorruptImageError(
          `${path}: VHD block ${block} (at offset ${entry * 512}, ending at ${end}) lies beyond the end of the file ` +
            `(${file.size} bytes): the image is truncated or its block allocation table is corrupt`,
        );
      }
    }
    return map;
  }

  /** Blocks whose sector bitmap, read so far, marks some of the block's sectors absent and others present. */
  get partialBlocks(): number {
    let n = 0;
    for (const state of this.states) if (state === BitmapState.Partial) n++;
    return n;
  }

  /** The runs covering [offset, offset + length), in order, adjacent runs of one kind merged where contiguous. */
  async *runs(offset: number, length: number): AsyncGenerator<VhdRun> {
    const merger = new FileRunMerger<VhdRun>();
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const block = Math.floor(pos / this.blockSize);
      const blockStart = block * this.blockSize;
      const blockEnd = Math.min(blockStart + this.blockSize, end);
      for (const run of await this.blockRuns(block, pos - blockStart, blockEnd - blockStart)) yield* merger.add(run);
      pos = blockEnd;
    }
    yield* merger.flush();
  }

  /** Runs of one block between byte offsets `from` and `to` inside it. */
  private async blockRuns(block: number, from: number, to: number): Promise<VhdRun[]> {
    const base = block * this.blockSize;
    const entry = this.bat[block]!;
    const unallocated = (a: number, b: number): VhdRun => ({
      offset: base + a,
      length: b - a,
      kind: "unallocated",
      fileOffset: 0,
    });
    if (entry === VHD_UNALLOCATED) return [unallocated(from, to)];
    const dataStart = entry * 512 + this.bitmapBytes;
    const data = (a: number, b: number): VhdRun => ({
      offset: base + a,
      length: b - a,
      kind: "data",
      fileOffset: dataStart + a,
    });
    const state = await this.bitmapState(block);
    if (state === BitmapState.Full) return [data(from, to)];
    if (state === BitmapState.Empty) return [unallocated(from, to)];
    const bitmap = await this.partialBitmap(block);
    const runs: VhdRun[] = [];
    // Walk sectors, clipping the first and last to the byte range asked for.
    let sector = Math.floor(from / 512);
    const lastSector = Math.ceil(to / 512);
    while (sector < lastSector) {
      const present = sectorPresent(bitmap, sector);
      let next = sector + 1;
      while (next < lastSector) {
        const byte = bitmap[next >>> 3]!;
        if ((next & 7) === 0 && next + 8 <= lastSector && byte === (present ? 0xff : 0)) next += 8;
        else if (sectorPresent(bitmap, next) === present) next++;
        else break;
      }
      const a = Math.max(from, sector * 512);
      const b = Math.min(to, next * 512);
      runs.push(present ? data(a, b) : unallocated(a, b));
      sector = next;
    }
    return runs;
  }

  private bitmapState(block: number): Promise<BitmapState> | BitmapState {
    const known = this.states[block]! as BitmapState;
    if (known !== BitmapState.Unknown) return known;
    let load = this.loading.get(block);
    if (!load) {
      load = this.readBitmap(block).then((bitmap) => {
        const state = classify(bitmap, this.sectorsPerBlock);
        this.states[block] = state;
        if (state === BitmapState.Partial) this.remember(block, bitmap);
        return state;
      });
      load.finally(() => this.loading.delete(block)).catch(() => undefined);
      this.loading.set(block, load);
    }
    return load;
  }

  private async partialBitmap(block: number): Promise<Buffer> {
    const cached = this.partial.get(block);
    if (cached) {
      this.partial.delete(block);
      this.partial.set(block, cached);
      return cached;
    }
    const bitmap = await this.readBitmap(block);
    this.remember(block, bitmap);
    return bitmap;
  }

  private remember(block: number, bitmap: Buffer): void {
    this.partial.set(block, bitmap);
    while (this.partial.size > this.maxPartial) this.partial.delete(this.partial.keys().next().value!);
  }

  private readBitmap(block: number): Promise<Buffer> {
    return this.file.readExact(
      this.bat[block]! * 512,
      this.bitmapBytes,
      undefined,
      `VHD sector bitmap of block ${block}`,
    );
  }
}

function sectorPresent(bitmap: Buffer, sector: number): boolean {
  return ((bitmap[sector >>> 3]! >>> (7 - (sector & 7))) & 1) === 1;
}

/** Full, empty or partial, judging only the bits of the block's sectors (the padding after them is ignored). */
function classify(bitmap: Buffer, sectors: number): BitmapState {
  const wholeBytes = sectors >>> 3;
  const tailBits = sectors & 7;
  const head = bitmap.subarray(0, wholeBytes);
  const tailMask = (0xff << (8 - tailBits)) & 0xff;
  const tail = tailBits ? bitmap[wholeBytes]! & tailMask : 0;
  if (head.every((b) => b === 0xff) && tail === tailMask) return BitmapState.Full;
  if (head.every((b) => b === 0) && tail === 0) return BitmapState.Empty;
  return BitmapState.Partial;
}
