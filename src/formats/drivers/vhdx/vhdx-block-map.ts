/**
 * The VHDX block allocation table ([MS-VHDX] 2.5): one 64-bit entry per payload block (state in bits 0-2, file
 * offset in MiB in bits 20-63), with one sector-bitmap entry after every `chunk ratio` payload entries. The chunk
 * ratio is how many payload blocks one 1 MiB sector bitmap block covers: 2^23 sectors × logical sector size ÷
 * block size. Sector bitmaps only matter to differencing files, which are refused, so their entries are skipped.
 *
 * Payload states: FULLY_PRESENT (6) is data at the entry's offset; ZERO (2) reads as zeros by definition;
 * NOT_PRESENT (0), UNDEFINED (1) and UNMAPPED (3) may read as anything or zeros, and zeros is what qemu and
 * Hyper-V return, so they are unallocated here; PARTIALLY_PRESENT (7) is only valid in differencing files.
 */
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LIMITS } from "../../limits.js";
import { FileRunMerger, type FileRun } from "../../engine/source-ranges.js";
import type { VhdxRegion } from "./vhdx-header-section.js";
import type { VhdxMetadata } from "./vhdx-metadata.js";

const MiB = 2 ** 20;

export const PayloadState = {
  notPresent: 0,
  undefined: 1,
  zero: 2,
  unmapped: 3,
  fullyPresent: 6,
  partiallyPresent: 7,
} as const;

export interface VhdxRun extends FileRun {
  readonly kind: "data" | "zero" | "unallocated";
}

export interface BlockCounts {
  readonly present: number;
  readonly zero: number;
  readonly absent: number;
}

export class VhdxBlockMap {
  readonly chunkRatio: number;
  readonly blockCount: number;
  readonly counts: BlockCounts;

  private constructor(
    private readonly table: Buffer,
    readonly virtualSize: number,
    readonly blockSize: number,
    chunkRatio: number,
    counts: BlockCounts,
  ) {
    this.chunkRatio = chunkRatio;
    this.blockCount = Math.ceil(virtualSize / blockSize);
    this.counts = counts;
  }

  /** Reads the BAT entries the disk needs and checks every payload entry's state and place in the file. */
  static async load(file: ImageInput, region: VhdxRegion, meta: VhdxMetadata): Promise<VhdxBlockMap> {
    const path = file.path;
    const chunkRatio = (2 ** 23 * meta.logicalSectorSize) / meta.blockSize;
    const blocks = Math.ceil(meta.virtualSize / meta.blockSize);
    const entries = blocks === 0 ? 0 : blocks + Math.floor((blocks - 1) / chunkRatio);
    const bytes = entries * 8;
    if (bytes > LIMITS.maxTableBytes) {
      throw new CorruptImageError(
        `${path}: VHDX block allocation table of ${entries} entries (${bytes} bytes) exceeds the ` +
          `${LIMITS.maxTableBytes}-byte limit`,
      );
    }
    if (bytes > region.length) {
      throw new CorruptImageError(
        `${path}: VHDX BAT region of ${region.length} bytes cannot hold the ${entries} entries a ` +
          `${meta.virtualSize}-byte disk of ${meta.blockSize}-byte blocks needs`,
      );
    }
    const table = await file.readExact(region.fileOffset, bytes, undefined, "VHDX block allocation table");
    let present = 0;
    let zero = 0;
    for (let block = 0; block < blocks; block++) {
      const { state, offsetMiB } = batEntry(table, chunkRatio, block);
      switch (state) {
        case PayloadState.fullyPresent: {
          const inDisk = Math.min(meta.blockSize, meta.virtualSize - block * meta.blockSize);
          if (offsetMiB < 1 || offsetMiB * MiB + inDisk > file.size) {
            throw new CorruptImageError(
              `${path}: VHDX block ${block} at offset ${offsetMiB} MiB (+${inDisk} bytes) lies ` +
                (offsetMiB < 1 ? "inside the header section" : `beyond the end of the file (${file.size} bytes)`) +
                ": the image is truncated or its block allocation table is corrupt",
            );
          }
          present++;
          break;
        }
        case PayloadState.zero:
          zero++;
          break;
        case PayloadState.notPresent:
        case PayloadState.undefined:
        case PayloadState.unmapped:
          break;
        case PayloadState.partiallyPresent:
          throw new CorruptImageError(
            `${path}: VHDX block ${block} is PARTIALLY_PRESENT, a state only differencing files may use`,
          );
        default:
          throw new CorruptImageError(`${path}: VHDX block ${block} has the reserved state ${state}`);
      }
    }
    const counts = { present, zero, absent: blocks - present - zero };
    return new VhdxBlockMap(table, meta.virtualSize, meta.blockSize, chunkRatio, counts);
  }

  /** The runs covering [offset, offset + length), in order, merged where contiguous. */
  *runs(offset: number, length: number): Generator<VhdxRun> {
    const merger = new FileRunMerger<VhdxRun>();
    const end = offset + length;
    for (let pos = offset; pos < end;) {
      const block = Math.floor(pos / this.blockSize);
      const blockStart = block * this.blockSize;
      const pieceEnd = Math.min(blockStart + this.blockSize, end);
      const { state, offsetMiB } = batEntry(this.table, this.chunkRatio, block);
      const kind = state === PayloadState.fullyPresent ? "data" : state === PayloadState.zero ? "zero" : "unallocated";
      const fileOffset = kind === "data" ? offsetMiB * MiB + (pos - blockStart) : 0;
      yield* merger.add({ offset: pos, length: pieceEnd - pos, kind, fileOffset });
      pos = pieceEnd;
    }
    yield* merger.flush();
  }
}

/** The entry of payload block `block`: its sector-bitmap entries come after every `chunkRatio` payload entries. */
function batEntry(table: Buffer, chunkRatio: number, block: number): { state: number; offsetMiB: number } {
  const at = (block + Math.floor(block / chunkRatio)) * 8;
  const low = table.readUInt32LE(at);
  const high = table.readUInt32LE(at + 4);
  // Bits 20-63 are the offset in MiB: 12 bits from the low word, 32 from the high one (exact in a double).
  return { state: low & 7, offsetMiB: high * 4096 + (low >>> 20) };
}
