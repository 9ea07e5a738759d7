/**
 * An InputFile made of byte ranges of another file: a disk stored as a member of an archive (an OVA's VMDK)
 * read in place, without extracting it, or a disk split into chunks (OVF ovf:chunkSize: members .000, .001…)
 * read as one. Offsets are the slice's own; a read past the slice's end is the same CorruptImageError an
 * InputFile gives past a file's end, so a driver's bounds checks keep working unchanged.
 *
 * It has InputFile's public shape, so a driver that reads through readExact/readPadded takes it in place of
 * an InputFile. `fd` and `handle` are the whole underlying file and are not windowed: a caller that uses them
 * (lseek-based hole finding for flat extents) must not be given a slice; `fd` throws to make misuse loud.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import { InputFile } from "./input-file.js";

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export class InputSlice {
  readonly size: number;
  private readonly starts: number[];

  private constructor(
    private readonly file: InputFile,
    private readonly ranges: readonly ByteRange[],
    /** Name shown in errors, e.g. "appliance.ova:disk1.vmdk". */
    readonly path: string,
  ) {
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

  get handle() {
    return this.file.handle;
  }

  get fd(): number {
    throw new UnsupportedFeatureError(`${this.path}: a byte range of a file has no descriptor of its own`);
  }

  /** Reads exactly `length` bytes at `position` of the slice. */
  async readExact(position: number, length: number, into?: Buffer, what = "data"): Promise<Buffer> {
    if (!Number.isSafeInteger(position) || position < 0 || length < 0 || position + length > this.size) {
      throw new CorruptImageError(
        `${this.path}: ${what} at offset ${position} (+${length} bytes) lies beyond the end of the file (${this.size} bytes)`,
      );
    }
    const buf = into ?? Buffer.allocUnsafe(length);
    let done = 0;
    let i = this.rangeIndex(position);
    while (done < length) {
      const range = this.ranges[i]!;
      const within = position + done - this.starts[i]!;
      const n = Math.min(length - done, range.length - within);
      await this.file.readExact(range.offset + within, n, buf.subarray(done, done + n), what);
      done += n;
      i++;
    }
    return buf.subarray(0, length);
  }

  /** Reads up to `length` bytes at `position`; bytes past the slice's end read as zeros. */
  async readPadded(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const buf = into ?? Buffer.allocUnsafe(length);
    const available = Math.max(0, Math.min(length, this.size - position));
    if (available > 0) await this.readExact(position, available, buf);
    if (available < length) buf.fill(0, available, length);
    return buf.subarray(0, length);
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  /** This slice where a driver takes an InputFile (same public shape; see the note above). */
  asInputFile(): InputFile {
    return this as unknown as InputFile;
  }

  private rangeIndex(position: number): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= position) lo = mid;
      else hi = mid - 1;
    }
    // Skip empty ranges at the position.
    while (lo < this.ranges.length - 1 && this.starts[lo + 1]! <= position) lo++;
    return lo;
  }
}

// Compile-time check that InputSlice offers every public member of InputFile.
const _shape: (s: InputSlice) => Pick<InputFile, keyof InputFile> = (s) => s;
void _shape;
