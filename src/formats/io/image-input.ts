import { CorruptImageError } from "../errors.js";

/**
 * What a driver reads an image through: a whole file (InputFile) or byte ranges of one read as a file
 * (InputSlice: a disk stored inside an archive). Reads are bounds-checked, so a table offset pointing past the
 * end becomes a clear CorruptImageError instead of a short read silently padded with zeros.
 */
export interface ImageInput {
  /** Name shown in errors. */
  readonly path: string;
  readonly size: number;
  /** Bytes the input occupies on the host. */
  readonly allocatedSize: number;
  /** Reads exactly `length` bytes at `position`, failing if any of them lie beyond the end of the input. */
  readExact(position: number, length: number, into?: Buffer, what?: string): Promise<Buffer>;
  /** Reads up to `length` bytes at `position`; bytes past the end of the input read as zeros. */
  readPadded(position: number, length: number, into?: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

/** The bounds checks and padding every ImageInput shares; a subclass supplies the reads themselves. */
export abstract class BoundedInput implements ImageInput {
  abstract readonly path: string;
  abstract readonly size: number;
  abstract readonly allocatedSize: number;
  abstract close(): Promise<void>;

  /** Fills `buf` with the `length` bytes at `position`, all of which lie inside the input. */
  protected abstract readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void>;

  async readExact(position: number, length: number, into?: Buffer, what = "data"): Promise<Buffer> {
    if (!Number.isSafeInteger(position) || position < 0 || length < 0 || position + length > this.size) {
      throw new CorruptImageError(
        `${this.path}: ${what} at offset ${position} (+${length} bytes) lies beyond the end of the file (${this.size} bytes)`,
      );
    }
    const buf = into ?? Buffer.allocUnsafe(length);
    await this.readWithin(position, length, buf, what);
    return buf.subarray(0, length);
  }

  async readPadded(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const buf = into ?? Buffer.allocUnsafe(length);
    const available = Math.max(0, Math.min(length, this.size - position));
    if (available > 0) await this.readExact(position, available, buf);
    if (available < length) buf.fill(0, available, length);
    return buf.subarray(0, length);
  }
}
