import type { Extent, ImageDetails, ImageSource } from "../../types.js";
import { InputFile } from "../../io/input-file.js";
import { holeFinder, type HoleFinder } from "../../io/seek-data.js";

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
    if (offset < 0 || length < 0 || offset + length > this.virtualSize) {
      throw new RangeError(`${this.file.path}: read ${offset}+${length} is outside the ${this.virtualSize}-byte disk`);
    }
    return this.file.readExact(offset, length, into, "disk data");
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    const end = offset + length;
    if (offset < 0 || end > this.virtualSize) {
      throw new RangeError(`${this.file.path}: extent range ${offset}+${length} is outside the disk`);
    }
    if (!this.holes) {
      if (length > 0) yield { offset, length, kind: "data" };
      return;
    }
    let pos = offset;
    while (pos < end) {
      let dataStart = this.holes.nextData(pos);
      if (dataStart < 0 || dataStart > end) dataStart = end;
      if (dataStart > pos) yield { offset: pos, length: dataStart - pos, kind: "unallocated" };
      if (dataStart >= end) break;
      const holeStart = Math.min(this.holes.nextHole(dataStart), end);
      yield { offset: dataStart, length: holeStart - dataStart, kind: "data" };
      pos = holeStart;
    }
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
