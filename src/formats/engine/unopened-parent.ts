/**
 * A parent image named but not opened (ReferencePolicy `parents: "name-only"`, what `info` uses): nothing of it
 * is read, not even whether it exists. The child's map shows the ranges it leaves to its parent as
 * unallocated, and a read of such a range fails rather than return zeros the parent may not hold.
 */
import { ReferenceRefusedError } from "../errors.js";
import type { Extent, ImageDetails, ImageSource } from "../types.js";

export class UnopenedParent implements ImageSource {
  readonly format = "unopened";
  /** Unknown: as large as any child, so that every range a child leaves to it is asked of it. */
  readonly virtualSize = Number.MAX_SAFE_INTEGER;

  constructor(
    private readonly childPath: string,
    private readonly name: string,
    private readonly role: string,
  ) {}

  read(): Promise<Buffer> {
    return Promise.reject(
      new ReferenceRefusedError(
        `${this.childPath}: reading it needs its ${this.role} "${this.name}", which was only named, not opened`,
      ),
    );
  }

  async *extents(offset = 0, length = 0): AsyncIterable<Extent> {
    if (length > 0) yield { offset, length, kind: "unallocated" };
  }

  details(): Promise<ImageDetails> {
    return Promise.resolve({ format: this.format, virtualSize: 0, actualSize: 0, formatSpecific: {} });
  }

  async close(): Promise<void> {}
}
