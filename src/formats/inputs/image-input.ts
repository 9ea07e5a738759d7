/**
 * Where an image's bytes are, apart from how they are laid out — qemu's protocol drivers ("file",
 * "host_device", "http") beside its format drivers. Every format driver reads through an ImageInput and never
 * opens a path itself, so a qcow2 on a local disk, on a block device, behind an HTTP URL, inside an OVA or
 * arriving on standard input is the same driver code. Implementations:
 *
 * - FileInput      a local regular file or block device (size from the device, holes from SEEK_DATA)
 * - SliceInput     byte ranges of another input read as one (a disk inside an OVA, a split disk's chunks)
 * - HttpInput      any URL with Range requests (Glance with its token, S3 presigned URLs, web servers)
 * - StreamInput    a pipe (`-`): read once, in order
 *
 * Reads are bounds-checked, so a table offset pointing past the end becomes a clear CorruptImageError instead
 * of a short read silently padded with zeros.
 */
import { CorruptImageError } from "../errors.js";
import type { HoleFinder } from "../io/seek-data.js";

export interface ImageInput {
  /** Name shown in messages: a path, a URL without its query string, "appliance.ova:disk1.vmdk", "-". */
  readonly path: string;
  readonly size: number;
  /** Bytes the input occupies where it is stored (the host's blocks for a file; its length elsewhere). */
  readonly allocatedSize: number;
  /**
   * True when the bytes can be read only once, in increasing order (a pipe). Drivers that need random access
   * refuse such an input with a message saying so (requireRandomAccess).
   */
  readonly sequential: boolean;
  /**
   * The host path the input was opened by, when it is a local file or device: files the image names (a
   * backing file, VMDK extents) are resolved relative to it. Undefined for every other input, and references
   * from those are refused.
   */
  readonly localPath?: string;
  /** The host's holes in the input's own bytes (SEEK_DATA/SEEK_HOLE), or null where they cannot be known. */
  holes(): HoleFinder | null;
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
  get sequential(): boolean {
    return false;
  }
  get localPath(): string | undefined {
    return undefined;
  }
  abstract close(): Promise<void>;

  /** Fills `buf` with the `length` bytes at `position`, all of which lie inside the input. */
  protected abstract readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void>;

  holes(): HoleFinder | null {
    return null;
  }

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

/**
 * Opens an input and hands it to `build`, which makes what keeps it open (an image source, an extent); if
 * `build` fails, the input is closed before the error propagates.
 */
export async function buildOn<I extends ImageInput, T>(input: I, build: (input: I) => Promise<T>): Promise<T> {
  try {
    return await build(input);
  } catch (e) {
    await input.close().catch(() => undefined);
    throw e;
  }
}
