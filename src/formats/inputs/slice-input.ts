/**
 * An ImageInput made of byte ranges of another input: a disk stored as a member of an archive (an OVA's VMDK)
 * read in place, without extracting it, or a disk split into chunks (OVF ovf:chunkSize: members .000, .001…)
 * read as one. Offsets are the slice's own; a read past the slice's end is the same CorruptImageError a
 * FileInput gives past a file's end, so a driver's bounds checks keep working unchanged. The host's holes of
 * the archive are not the disk's, so a slice reports none; it is sequential when its parent is.
 */
import { CorruptImageError } from "../errors.js";
import { BoundedInput } from "./image-input.js";
import type { ImageInput } from "./image-input.js";
import { rangeIndex } from "../io/range-index.js";

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export class SliceInput extends BoundedInput {
  readonly size: number;
  private readonly starts: number[];

  private constructor(
    private readonly file: ImageInput,
    private readonly ranges: readonly ByteRange[],
    /** Name shown in errors, e.g. "appliance.ova:disk1.vmdk". */
    readonly path: string,
    private readonly closesParent: boolean,
  ) {
    super();
    this.starts = [0];
    for (const r of ranges) this.starts.push(this.starts[this.starts.length - 1]! + r.length);
    this.size = this.starts[this.starts.length - 1]!;
  }

  /**
   * Exposes the concatenation of `ranges` of `parent` (each must lie inside it). With `closesParent` the slice
   * owns the parent (closing the slice closes it, also when this call fails); otherwise the caller keeps it.
   */
  static async of(
    parent: ImageInput,
    ranges: readonly ByteRange[],
    label: string,
    { closesParent }: { closesParent: boolean },
  ): Promise<SliceInput> {
    const file = parent;
    const path = parent.path;
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
      return new SliceInput(file, ranges, label, closesParent);
    } catch (e) {
      if (closesParent) await file.close();
      throw e;
    }
  }

  override get sequential(): boolean {
    return this.file.sequential;
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
    if (this.closesParent) await this.file.close();
  }
}
