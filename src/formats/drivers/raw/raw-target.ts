import type { ImageTarget } from "../../types.js";
import type { OutputFile } from "../../io/output-file.js";

/** Largest zero buffer appended at once to a sequential output. */
const ZERO_CHUNK = 1 << 20;

/**
 * Writes a raw disk. On a seekable output zero runs stay holes (the file is sized up front and never
 * written there); on a sequential output zeros are written out, since a pipe has no holes.
 */
export class RawTarget implements ImageTarget {
  readonly format = "raw";
  readonly access: "random" | "sequential";
  readonly granularity = 4096;
  private zeroChunk: Buffer | undefined;

  private constructor(private readonly output: OutputFile) {
    this.access = output.seekable ? "random" : "sequential";
  }

  static async create(output: OutputFile, virtualSize: number): Promise<RawTarget> {
    if (output.seekable) await output.truncate(virtualSize);
    return new RawTarget(output);
  }

  writeData(offset: number, data: Buffer): Promise<void> {
    return this.output.seekable ? this.output.writeAt(data, offset) : this.output.append(data);
  }

  async writeZeroes(_offset: number, length: number): Promise<void> {
    if (this.output.seekable) return;
    this.zeroChunk ??= Buffer.alloc(ZERO_CHUNK);
    for (let left = length; left > 0; left -= ZERO_CHUNK) {
      await this.output.append(left >= ZERO_CHUNK ? this.zeroChunk : this.zeroChunk.subarray(0, left));
    }
  }

  async finish(): Promise<void> {
    // Nothing to do: a seekable output was sized in create(), a sequential one has had every byte appended.
  }

  async abort(): Promise<void> {}
}
