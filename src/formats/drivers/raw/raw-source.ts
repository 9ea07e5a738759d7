import type { Extent, ImageDetails, ImageSource } from "../../types.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { CorruptImageError } from "../../errors.js";
import { fileExtents, type HoleFinder } from "../../io/seek-data.js";
import { checkDiskRange } from "../../engine/source-ranges.js";
import type { RawWindow } from "./raw-open-options.js";

/**
 * A raw image: the input's bytes are the disk (all of them, or the window the `offset` and `size` options
 * give). The allocation map comes from the host filesystem's holes (SEEK_DATA/SEEK_HOLE); without them (a
 * device, HTTP, a pipe) every byte is reported as data and the convert pipeline's zero detection recovers
 * sparseness. Reads go straight to the input, so on a sequential input the pipeline's in-order reads are all
 * it takes.
 */
export class RawSource implements ImageSource {
  readonly format = "raw";
  readonly virtualSize: number;
  private readonly start: number;
  private readonly holes: HoleFinder | null;

  constructor(
    private readonly file: ImageInput,
    window: RawWindow = { offset: 0, size: file.size },
  ) {
    this.holes = file.holes();
    this.start = window.offset;
    this.virtualSize = window.size;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    try {
      return await this.file.readExact(this.start + offset, length, into, "disk data");
    } catch (e) {
      // A pipe's length is known only once it ends: say which promise it broke.
      const end = this.start + this.virtualSize;
      if (!this.file.sequential || this.file.size >= end) throw e;
      throw new CorruptImageError(
        `${this.file.path}: the input ended after ${this.file.size} bytes, short of the ${end} that the raw ` +
          `disk's given size (and offset) need`,
        { cause: e },
      );
    }
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    yield* fileExtents(this.holes, this.start + offset, offset, length, "unallocated");
  }

  async details(): Promise<ImageDetails> {
    let allocated = 0;
    for await (const e of this.extents()) if (e.kind === "data") allocated += e.length;
    return {
      format: this.format,
      virtualSize: this.virtualSize,
      actualSize: this.file.allocatedSize,
      allocatedBytes: allocated,
      formatSpecific: {
        sparseDetection: this.holes ? "SEEK_DATA" : "zero scan",
        ...(this.start ? { offset: this.start } : {}),
      },
    };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
