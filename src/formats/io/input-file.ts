import { open, type FileHandle } from "node:fs/promises";
import { CorruptImageError } from "../errors.js";
import { BoundedInput } from "./image-input.js";
import { closeHandle, readAt } from "./positional-io.js";

/**
 * A read-only image file with bounds-checked positional reads (see ImageInput). Every driver reads its file
 * through this, so a table offset pointing past the end becomes a clear CorruptImageError instead of a short
 * read silently padded with zeros.
 */
export class InputFile extends BoundedInput {
  private constructor(
    readonly path: string,
    readonly handle: FileHandle,
    readonly size: number,
    /** Bytes the file occupies on disk (st_blocks * 512). */
    readonly allocatedSize: number,
  ) {
    super();
  }

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

  /**
   * Opens `path` and hands it to `build`, which makes what keeps the file open (an image source, an extent);
   * if `build` fails, the file is closed before the error propagates.
   */
  static async openFor<T>(path: string, build: (file: InputFile) => Promise<T>): Promise<T> {
    const file = await InputFile.open(path);
    try {
      return await build(file);
    } catch (e) {
      await file.close().catch(() => undefined);
      throw e;
    }
  }

  get fd(): number {
    return this.handle.fd;
  }

  async close(): Promise<void> {
    await closeHandle(this.handle);
  }

  protected async readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    const got = await readAt(this.handle, buf, length, position);
    if (got < length) throw new CorruptImageError(`${this.path}: file shrank while reading ${what}`);
  }
}
