/**
 * Writes a static (preallocated, "fixed") VDI: every block is stored, block i at data-area index i, so the data
 * area is the disk itself at a fixed offset and the whole image is known up front. On a seekable output the
 * file is sized at once and zero runs stay holes; on a sequential output (pipe, tar member) everything is
 * appended in order, zeros included, which makes this the VDI variant that can be streamed.
 */
import type { OutputFile } from "../../io/output-file.js";
import { appendZeros } from "../../io/append-zeros.js";
import type { ImageTarget } from "../../types.js";
import { encodeVdiMetadata, identityBlockMap, storedBlockOffset, type VdiLayout } from "./vdi-layout.js";

export class VdiStaticTarget implements ImageTarget {
  readonly format = "vdi";
  readonly access: "random" | "sequential";
  /** The host filesystem's page: zero runs of that size become holes in a seekable output. */
  readonly granularity = 4096;
  /** End of what has been handed to this target so far: calls must continue exactly from here. */
  private covered = 0;
  /** Calls are chained so appends keep their order even if a caller does not wait for the previous one. */
  private serial: Promise<void> = Promise.resolve();

  private constructor(
    private readonly output: OutputFile,
    private readonly layout: VdiLayout,
  ) {
    this.access = output.seekable ? "random" : "sequential";
  }

  static async create(output: OutputFile, layout: VdiLayout): Promise<VdiStaticTarget> {
    const target = new VdiStaticTarget(output, layout);
    const fileEnd = storedBlockOffset(layout, layout.blocks);
    if (output.seekable) {
      // Sized up front: every block exists, and whatever is never written stays a hole reading as zeros.
      await output.truncate(fileEnd);
    } else {
      // Nothing about a static image depends on the data, so the metadata can go first.
      await output.append(target.metadata());
      await appendZeros(output, layout.dataOffset - output.position);
    }
    return target;
  }

  private metadata(): Buffer {
    return encodeVdiMetadata(this.layout, identityBlockMap(this.layout), this.layout.blocks);
  }

  private advance(offset: number, length: number): void {
    if (offset !== this.covered || offset + length > this.layout.diskSize) {
      throw new Error(
        `vdi: write at ${offset}+${length} does not continue the disk at ${this.covered} (size ${this.layout.diskSize})`,
      );
    }
    this.covered += length;
  }

  writeData(offset: number, data: Buffer): Promise<void> {
    return this.enqueue(async () => {
      this.advance(offset, data.length);
      if (this.output.seekable) await this.output.writeAt(data, this.layout.dataOffset + offset);
      else await this.output.append(data);
    });
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.enqueue(async () => {
      this.advance(offset, length);
      if (!this.output.seekable) await appendZeros(this.output, length);
    });
  }

  private enqueue(operation: () => Promise<void>): Promise<void> {
    const next = this.serial.then(operation);
    this.serial = next;
    return next;
  }

  async finish(): Promise<void> {
    await this.serial;
    if (this.covered !== this.layout.diskSize) {
      throw new Error(`vdi: finish() after ${this.covered} of ${this.layout.diskSize} bytes were written`);
    }
    if (this.output.seekable) {
      await this.output.writeAt(this.metadata(), 0);
    } else {
      // The last block is stored whole: pad past the end of the disk.
      await appendZeros(this.output, storedBlockOffset(this.layout, this.layout.blocks) - this.output.position);
    }
  }

  async abort(): Promise<void> {
    await this.serial.catch(() => undefined);
  }
}
