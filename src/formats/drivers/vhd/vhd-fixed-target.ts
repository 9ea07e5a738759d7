/**
 * Writes a fixed VHD: the disk's bytes as they are, then the footer. On a seekable output zero runs stay holes
 * (the footer written last gives the file its length); on a sequential output zeros are written out, so a fixed
 * VHD can go straight into a pipe or an upload stream.
 */
import type { ImageTarget } from "../../types.js";
import type { OutputFile } from "../../io/output-file.js";
import { appendZeros } from "../../io/append-zeros.js";
import { encodeVhdFooter, type VhdFooter } from "./vhd-footer.js";

export class VhdFixedTarget implements ImageTarget {
  readonly format = "vhd";
  readonly access: "random" | "sequential";
  readonly granularity = 4096;
  /** End of what has been handed to us so far, to pad a sequential output up to the disk size. */
  private written = 0;

  constructor(
    private readonly output: OutputFile,
    /** The disk size the footer declares (the source's size rounded up to whole sectors or a geometry). */
    private readonly diskSize: number,
    private readonly footer: Omit<VhdFooter, "checksum">,
  ) {
    this.access = output.seekable ? "random" : "sequential";
  }

  async writeData(offset: number, data: Buffer): Promise<void> {
    this.written = offset + data.length;
    if (this.output.seekable) await this.output.writeAt(data, offset);
    else await this.output.append(data);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.written = offset + length;
    if (!this.output.seekable) await appendZeros(this.output, length);
  }

  async finish(): Promise<void> {
    const footer = encodeVhdFooter(this.footer);
    if (this.output.seekable) {
      await this.output.writeAt(footer, this.diskSize);
    } else {
      await appendZeros(this.output, this.diskSize - this.written);
      await this.output.append(footer);
    }
  }

  async abort(): Promise<void> {}
}
