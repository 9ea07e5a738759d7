import { BoundedInput } from "../../src/formats/inputs/image-input.js";

/**
 * An image held in memory: an ImageInput with no path behind it (like an HTTP or archive input), counting its
 * reads and whether it was closed.
 */
export class MemoryInput extends BoundedInput {
  reads = 0;
  closed = false;

  constructor(
    private readonly bytes: Buffer,
    readonly path: string,
  ) {
    super();
  }

  get size(): number {
    return this.bytes.length;
  }

  get allocatedSize(): number {
    return this.bytes.length;
  }

  protected async readWithin(position: number, length: number, buf: Buffer): Promise<void> {
    this.reads++;
    this.bytes.copy(buf, 0, position, position + length);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
