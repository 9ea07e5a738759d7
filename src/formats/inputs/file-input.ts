import { constants, type Stats } from "node:fs";
import { open, readFile, type FileHandle } from "node:fs/promises";
import { CorruptImageError } from "../errors.js";
import { BoundedInput } from "./image-input.js";
import { closeHandle, readAt } from "../io/positional-io.js";
import { holeFinder, type HoleFinder } from "../io/seek-data.js";
import { lockImage } from "../io/image-locks.js";
import { sharingForced } from "../io/force-share.js";

/**
 * A local image file or block device, read with bounds-checked positional reads (see ImageInput).
 *
 * Opened with O_NONBLOCK so that a FIFO planted where an image or extent is expected cannot block the open
 * for ever (a blocking open would sit on a threadpool thread that no signal can free); anything but a
 * regular file or a block device is then refused. A block device's stat size is 0: its size comes from the
 * kernel's record of the device.
 *
 * The file is locked for reading as qemu locks the images it reads (io/image-locks.ts): opening an image another
 * process is writing is refused, naming that process, unless the operation forces sharing (io/force-share.ts).
 */
export class FileInput extends BoundedInput {
  private holeFinderMemo: HoleFinder | null | undefined;

  private constructor(
    readonly path: string,
    readonly handle: FileHandle,
    readonly size: number,
    /** Bytes the file occupies on disk (st_blocks * 512; a device's size). */
    readonly allocatedSize: number,
    readonly isBlockDevice: boolean,
  ) {
    super();
  }

  override get localPath(): string {
    return this.path;
  }

  static async open(path: string): Promise<FileInput> {
    const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = await handle.stat();
      if (!st.isFile() && !st.isBlockDevice()) {
        throw new CorruptImageError(`${path}: ${kindOf(st)}, not a regular file or block device`);
      }
      if (!sharingForced()) await lockImage(handle, path, "read");
      if (st.isBlockDevice()) {
        const size = await blockDeviceSize(path, st.rdev);
        return new FileInput(path, handle, size, size, true);
      }
      return new FileInput(path, handle, st.size, st.blocks * 512, false);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  get fd(): number {
    return this.handle.fd;
  }

  override holes(): HoleFinder | null {
    // Devices have no holes to ask for; files are asked once (the answer depends on the filesystem).
    if (this.holeFinderMemo === undefined) this.holeFinderMemo = this.isBlockDevice ? null : holeFinder(this.fd);
    return this.holeFinderMemo;
  }

  async close(): Promise<void> {
    await closeHandle(this.handle);
  }

  protected async readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    const got = await readAt(this.handle, buf, length, position);
    if (got < length) throw new CorruptImageError(`${this.path}: file shrank while reading ${what}`);
  }
}

/** What a file that is no image is, for the refusal. */
function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isSocket()) return "a socket";
  return "a special file";
}

/** The size in bytes of the block device with device number `rdev`, from /sys/dev/block/MAJOR:MINOR/size. */
export async function blockDeviceSize(path: string, rdev: number): Promise<number> {
  // glibc's gnu_dev_major/minor: the major number spans bits 8-19 and 32-43, the minor bits 0-7 and 20-31.
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  const sysfs = `/sys/dev/block/${major}:${minor}/size`;
  let text: string;
  try {
    text = await readFile(sysfs, "utf8");
  } catch (e) {
    throw new CorruptImageError(`${path}: cannot tell the block device's size (${sysfs}: ${(e as Error).message})`);
  }
  const sectors = Number(text.trim());
  if (!Number.isSafeInteger(sectors) || sectors < 0) {
    throw new CorruptImageError(`${path}: the kernel reports a block device size of "${text.trim()}" sectors`);
  }
  return sectors * 512; // sysfs counts 512-byte sectors whatever the device's logical block size
}
