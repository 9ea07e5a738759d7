import { open, type FileHandle } from "node:fs/promises";
import { CorruptImageError } from "../errors.js";

/**
 * A read-only image file with bounds-checked positional reads. Every driver reads its file through this,
 * so a table offset pointing past the end becomes a clear CorruptImageError instead of a short read
 * silently padded with zeros.
 */
export class InputFile {
  private constructor(
    readonly path: string,
    readonly handle: FileHandle,
    readonly size: number,
    /** Bytes the file occupies on disk (st_blocks * 512). */
    readonly allocatedSize: number,
  ) {}

  static async open(path: string): Promise<InputFile> {
    const handle = await open(path, "r");
    try {
      const st = await handle.stat();
      if (!st.isFile() && !st.isBlockDevice())
        throw new CorruptImageError(`${path}: not a regular file or block device`);
      return new InputFile(path, handle, st.size, st.blocks * 512);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  get fd(): number {
    return this.handle.fd;
  }

  /** Reads exactly `length` bytes at `position`, failing if any of them lie beyond the end of the file. */
  async readExact(position: number, length: number, into?: Buffer, what = "data"): Promise<Buffer> {
    if (!Number.isSafeInteger(position) || position < 0 || length < 0 || position + length > this.size) {
      throw new CorruptImageError(
        `${this.path}: ${what} at offset ${position} (+${length} bytes) lies beyond the end of the file (${this.size} bytes)`,
      );
    }
    const buf = into ?? Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buf, done, length - done, position + done);
      if (bytesRead === 0) throw new CorruptImageError(`${this.path}: file shrank while reading ${what}`);
      done += bytesRead;
    }
    return buf.subarray(0, length);
  }

  /** Reads up to `length` bytes at `position`; bytes past the end of file read as zeros. */
  async readPadded(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const buf = into ?? Buffer.allocUnsafe(length);
    const available = Math.max(0, Math.min(length, this.size - position));
    if (available > 0) await this.readExact(position, available, buf);
    if (available < length) buf.fill(0, available, length);
    return buf.subarray(0, length);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
