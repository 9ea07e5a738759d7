import type { Extent, ImageDetails, ImageSource } from "../../types.js";
import { InputFile } from "../../io/input-file.js";
import { fileExtents, holeFinder, type HoleFinder } from "../../io/seek-data.js";
import { checkDiskRange } from "../../engine/source-ranges.js";

/**
 * A raw image: the file is the disk. The allocation map comes from the host filesystem's holes
 * (SEEK_DATA/SEEK_HOLE); without them every byte is reported as data and the convert pipeline's zero
 * detection recovers sparseness.
 */
export class RawSource implements ImageSource {
  readonly format = "raw";
  private readonly holes: HoleFinder | null;

  private constructor(private readonly file: InputFile) {
    this.holes = holeFinder(file.fd);
  }

  static async open(path: string): Promise<RawSource> {
    return new RawSource(await InputFile.open(path));
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
