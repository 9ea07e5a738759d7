import type { ImageTarget } from "../../types.js";
import type { OutputFile } from "../../io/output-file.js";
import { appendZeros } from "../../io/append-zeros.js";

/**
 * Writes a raw disk. On a seekable output zero runs stay holes (the file is sized up front and never
 * written there); on a sequential output zeros are written out, since a pipe has no holes.
 */
export class RawTarget implements ImageTarget {
  readonly format = "raw";
  readonly access: "random" | "sequential";
  readonly granularity = 4096;

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
    if (!this.output.seekable) await appendZeros(this.output, length);
  }

  async finish(): Promise<void> {
    // Nothing to do: a seekable output was sized in create(), a sequential one has had every byte appended.
  }

  async abort(): Promise<void> {}
}
