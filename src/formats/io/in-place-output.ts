/**
 * An output written where it is: a block device (which cannot be replaced by another file: that would leave a
 * regular file where the device node was), or an existing file with `-n` (qemu-img convert -n: the target exists,
 * do not create it). No temporary name, no rename, nothing truncated before the image is written. Whatever the
 * image leaves unwritten still holds the old bytes, so commit zeroes it (holes punched in a file, the device
 * asked to zero the range) before the output counts as complete; a regular file then ends where the image ends.
 *
 * A device has a size: an image that needs more is refused, at the first truncate (a raw or fixed image sets its
 * length before writing anything) or at the first write past the end. Unlike a replaced file, a device or file
 * written in place is partly written after a failed run; that is what writing in place means.
 */
import type { FileHandle } from "node:fs/promises";
import { UsageError } from "../errors.js";
import { formatBytes } from "../../util/human.js";
import { closeHandle, settlePending, writeAt, zeroAt } from "./positional-io.js";
import { outputError, type FileOutput } from "./output-file.js";
import { UnwrittenRanges } from "./unwritten-ranges.js";

/** Gaps listed before the oldest are zeroed early, bounding the list (16 bytes each) for hostile inputs. */
const MAX_GAPS = 65536;

export class InPlaceOutputFile implements FileOutput {
  readonly seekable = true;
  private end = 0;
  private settled = false;
  private readonly unwritten = new UnwrittenRanges();

  constructor(
    readonly finalPath: string,
    readonly handle: FileHandle,
    /** A block device's size in bytes; undefined for a regular file, which grows as needed. */
    readonly deviceSize: number | undefined,
  ) {}

  get position(): number {
    return this.end;
  }

  async append(data: Buffer): Promise<void> {
    await this.writeAt(data, this.end);
  }

  async writeAt(data: Buffer, position: number): Promise<void> {
    const end = position + data.length;
    this.checkFits(end);
    this.end = Math.max(this.end, end);
    this.unwritten.wrote(position, end);
    try {
      await writeAt(this.handle, data, position);
      if (this.unwritten.count > MAX_GAPS) await this.zero(this.unwritten.takeGaps());
    } catch (e) {
      throw outputError(this.finalPath, e);
    }
  }

  /** Sets the image's length: a device must hold it, a regular file grows to it (and is cut to it on commit). */
  async truncate(length: number): Promise<void> {
    this.checkFits(length);
    if (this.deviceSize === undefined && length > (await this.handle.stat()).size) {
      await this.handle.truncate(length).catch((e: unknown) => {
        throw outputError(this.finalPath, e);
      });
    }
    this.end = length;
  }

  private checkFits(end: number): void {
    if (this.deviceSize !== undefined && end > this.deviceSize) {
      throw new UsageError(
        `${this.finalPath} is too small for the image: the device holds ${formatBytes(this.deviceSize)} ` +
          `(${this.deviceSize} bytes), the image needs at least ${formatBytes(end)} (${end} bytes)`,
      );
    }
  }

  private async zero(ranges: readonly (readonly [number, number])[]): Promise<void> {
    for (const [start, end] of ranges) await zeroAt(this.handle, start, end - start);
  }

  /** Zeroes what the image left unwritten, cuts a regular file to the image's end, flushes it and closes it. */
  async commit(options: { sync?: boolean } = {}): Promise<void> {
    await settlePending(this.handle);
    try {
      await this.zero(this.unwritten.take(this.end));
      if (this.deviceSize === undefined) await this.handle.truncate(this.end);
      if (options.sync ?? true) await this.handle.sync();
    } catch (e) {
      throw outputError(this.finalPath, e);
    }
    this.settled = true;
    await closeHandle(this.handle);
  }

  /** Closes the output, partly written as it is. */
  async discard(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await closeHandle(this.handle).catch(() => undefined);
  }
}
