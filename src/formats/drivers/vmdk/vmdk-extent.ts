/**
 * One extent of a VMDK disk: a stretch of the virtual disk stored in one file (or nowhere, for ZERO extents).
 * The disk is the extents' concatenation in descriptor order. Offsets here are relative to the extent's start.
 *
 * Flat extents (FLAT, VMFS) are raw bytes at a sector offset in their file; their allocation map comes from
 * the host filesystem's holes when it can tell (as for raw images). Sparse extents live in vmdk-sparse-extent.
 */
import type { ExtentKind } from "../../types.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { fileExtents, type HoleFinder } from "../../io/seek-data.js";

export interface ExtentRun {
  readonly offset: number;
  readonly length: number;
  readonly kind: ExtentKind;
}

export interface VmdkExtent {
  /** Guest bytes this extent holds. */
  readonly length: number;
  /** The file holding the extent's data (none for ZERO extents). */
  readonly file?: ImageInput;
  /** Fills `dest` with `dest.length` bytes from extent offset `offset`. */
  read(offset: number, dest: Buffer): Promise<void>;
  /** The allocation map of `length` bytes from `offset`, in order, contiguous. */
  runs(offset: number, length: number): Promise<ExtentRun[]>;
  close(): Promise<void>;
}

/** Raw bytes at `start` in `file`. Bytes past the end of the file read as zeros, as in qemu. */
export class FlatExtent implements VmdkExtent {
  private readonly holes: HoleFinder | null;

  constructor(
    readonly file: ImageInput,
    readonly length: number,
    private readonly start: number,
  ) {
    this.holes = file.holes();
  }

  async read(offset: number, dest: Buffer): Promise<void> {
    await this.file.readPadded(this.start + offset, dest.length, dest);
  }

  async runs(offset: number, length: number): Promise<ExtentRun[]> {
    const end = offset + length;
    // Past the file's end nothing is stored.
    const storedEnd = Math.max(offset, Math.min(end, this.file.size - this.start));
    const runs: ExtentRun[] = [
      ...fileExtents(this.holes, this.start + offset, offset, storedEnd - offset, "unallocated"),
    ];
    if (end > storedEnd) runs.push({ offset: storedEnd, length: end - storedEnd, kind: "unallocated" });
    return runs;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/** A ZERO extent: reads as zeros and stores nothing. */
export class ZeroExtent implements VmdkExtent {
  constructor(readonly length: number) {}

  async read(_offset: number, dest: Buffer): Promise<void> {
    dest.fill(0);
  }

  async runs(offset: number, length: number): Promise<ExtentRun[]> {
    return [{ offset, length, kind: "zero" }];
  }

  async close(): Promise<void> {}
}
