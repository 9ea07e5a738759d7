/**
 * An ImageInput made of byte ranges of another file: a disk stored as a member of an archive (an OVA's VMDK)
 * read in place, without extracting it, or a disk split into chunks (OVF ovf:chunkSize: members .000, .001…)
 * read as one. Offsets are the slice's own; a read past the slice's end is the same CorruptImageError an
 * InputFile gives past a file's end, so a driver's bounds checks keep working unchanged. It has no file
 * descriptor of its own, so code that needs one (lseek-based hole finding) takes an InputFile instead.
 */
import { CorruptImageError } from "../errors.js";
import { BoundedInput } from "./image-input.js";
import { InputFile } from "./input-file.js";
import { rangeIndex } from "./range-index.js";

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export class InputSlice extends BoundedInput {
  readonly size: number;
  private readonly starts: number[];

  private constructor(
    private readonly file: InputFile,
    private readonly ranges: readonly ByteRange[],
    /** Name shown in errors, e.g. "appliance.ova:disk1.vmdk". */
    readonly path: string,
  ) {
    super();
    this.starts = [0];
    for (const r of ranges) this.starts.push(this.starts[this.starts.length - 1]! + r.length);
    this.size = this.starts[this.starts.length - 1]!;
  }

  /** Opens `path` and exposes the concatenation of `ranges` (each must lie inside the file). */
  static async open(path: string, ranges: readonly ByteRange[], label: string): Promise<InputSlice> {
    const file = await InputFile.open(path);
    try {
      for (const r of ranges) {
        if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.offset < 0 || r.length < 0) {
          throw new CorruptImageError(`${label}: bad byte range ${r.offset}+${r.length}`);
        }
        if (r.offset + r.length > file.size) {
          throw new CorruptImageError(
            `${label}: ${r.offset}+${r.length} lies beyond the end of ${path} (${file.size} bytes)`,
          );
        }
      }
      return new InputSlice(file, ranges, label);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** The slice's bytes on disk are not separable from the file's; its length stands in for them. */
  get allocatedSize(): number {
    return this.size;
  }

  protected async readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    let done = 0;
    let i = rangeIndex(this.starts, position);
    while (done < length) {
      const range = this.ranges[i]!;
      const within = position + done - this.starts[i]!;
      const n = Math.min(length - done, range.length - within);
      await this.file.readExact(range.offset + within, n, buf.subarray(done, done + n), what);
      done += n;
      i++;
    }
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
