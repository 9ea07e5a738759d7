import type { Extent, ImageDetails, ImageSource } from "../../types.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { fileExtents, type HoleFinder } from "../../io/seek-data.js";
import { checkDiskRange } from "../../engine/source-ranges.js";

/**
 * A raw image: the input is the disk. The allocation map comes from the host filesystem's holes
 * (SEEK_DATA/SEEK_HOLE); without them (a device, HTTP, a pipe) every byte is reported as data and the convert
 * pipeline's zero detection recovers sparseness. Reads go straight to the input, so on a sequential input the
 * pipeline's in-order reads are all it takes.
 */
export class RawSource implements ImageSource {
  readonly format = "raw";
  private readonly holes: HoleFinder | null;

  constructor(private readonly file: ImageInput) {
    this.holes = file.holes();
  }

  get virtualSize(): number {
    return this.file.size;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    return this.file.readExact(offset, length, into, "disk data");
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    yield* fileExtents(this.holes, offset, offset, length, "unallocated");
  }

  async details(): Promise<ImageDetails> {
    let allocated = 0;
    for await (const e of this.extents()) if (e.kind === "data") allocated += e.length;
    return {
      format: this.format,
      virtualSize: this.virtualSize,
      actualSize: this.file.allocatedSize,
      allocatedBytes: allocated,
      formatSpecific: { sparseDetection: this.holes ? "SEEK_DATA" : "zero scan" },
    };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
