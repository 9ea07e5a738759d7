/**
 * The VDI block map: one little-endian 32-bit entry per block of the disk, holding the block's index in the
 * data area, or a marker for a block that is not stored. Loaded once at open and validated entry by entry,
 * so reads afterwards need no checks beyond the disk range.
 */
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import type { ExtentKind } from "../../types.js";
import { VDI_BLOCK_UNALLOCATED, VDI_BLOCK_ZERO, blockStride, type VdiHeader } from "./vdi-header.js";

/** Entries below this are indices into the data area; the two values above it are markers. */
const FIRST_MARKER = VDI_BLOCK_ZERO;

export class VdiBlockMap {
  private constructor(
    private readonly header: VdiHeader,
    /** The entries in host order. */
    private readonly entries: Uint32Array,
    /** Blocks of the disk that have data stored in the image. */
    readonly storedBlocks: number,
  ) {}

  /**
   * Reads the block map and checks every entry: a stored block must have an index below the header's allocated
   * count, no two blocks may share an index (they would alias each other's data), and every stored block's data
   * must lie inside the file.
   */
  static async load(file: ImageInput, header: VdiHeader): Promise<VdiBlockMap> {
    const path = file.path;
    const count = header.blocksInImage;
    // readVdiHeader capped the block count, so this allocation is bounded by LIMITS.maxTableBytes.
    const raw = await file.readExact(header.blockMapOffset, count * 4, undefined, "VDI block map");
    const entries = new Uint32Array(count);
    const owner = new Int32Array(header.blocksAllocated).fill(-1);
    const stride = blockStride(header);
    let storedBlocks = 0;
    let dataEnd = 0;
    let dataEndBlock = -1;
    for (let block = 0; block < count; block++) {
      const entry = raw.readUInt32LE(block * 4);
      entries[block] = entry;
      if (entry >= FIRST_MARKER) continue;
      if (entry >= header.blocksAllocated) {
        throw new CorruptImageError(
          `${path}: VDI block map entry for block ${block} points to data block ${entry}, ` +
            `but the header counts only ${header.blocksAllocated} allocated blocks`,
        );
      }
      const previous = owner[entry]!;
      if (previous >= 0) {
        throw new CorruptImageError(
          `${path}: VDI blocks ${previous} and ${block} both point to data block ${entry} (overlapping block map)`,
        );
      }
      owner[entry] = block;
      const diskStart = block * header.blockSize;
      if (diskStart >= header.diskSize) continue; // a spare block past the disk's end is never read
      storedBlocks++;
      // Only the part of the block inside the disk must be present: the last block of an odd-sized disk may end early.
      const end =
        header.dataOffset +
        entry * stride +
        header.blockExtra +
        Math.min(header.blockSize, header.diskSize - diskStart);
      if (end > dataEnd) {
        dataEnd = end;
        dataEndBlock = block;
      }
    }
    if (dataEnd > file.size) {
      throw new CorruptImageError(
        `${path}: VDI block ${dataEndBlock} has its data at up to offset ${dataEnd}, ` +
          `beyond the end of the file (${file.size} bytes); the image is truncated`,
      );
    }
    return new VdiBlockMap(header, entries, storedBlocks);
  }

  /** What block `block` holds. */
  kind(block: number): ExtentKind {
    const entry = this.entries[block]!;
    if (entry < FIRST_MARKER) return "data";
    return entry === VDI_BLOCK_UNALLOCATED ? "unallocated" : "zero";
  }

  /** File offset of the data of `block`, or -1 when the block is not stored. */
  fileOffset(block: number): number {
    const entry = this.entries[block]!;
    if (entry >= FIRST_MARKER) return -1;
    return this.header.dataOffset + entry * blockStride(this.header) + this.header.blockExtra;
  }
}
