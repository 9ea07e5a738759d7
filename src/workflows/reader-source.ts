/**
 * The bridge between a provider's positional reader (HTTP Range on Glance) and the format engine: an
 * `ImageInput` over an `ImageReader`, so a driver reads a disk where it is stored without knowing about HTTP,
 * and the image source for the formats that can be opened from an ImageInput (raw here; sparse and
 * streamOptimized VMDK through the VMDK driver; qcow2 without a backing or external data file through the
 * qcow2 driver). Other formats' drivers open files by path, so for them the workflow downloads the (compact)
 * image first.
 */
import { CorruptImageError } from "../formats/errors.js";
import { BoundedInput } from "../formats/io/image-input.js";
import { checkDiskRange, readDestination } from "../formats/engine/source-ranges.js";
import { openVmdkFromInput } from "../formats/drivers/vmdk/vmdk-source.js";
import { openQcow2FromInput } from "../formats/drivers/qcow2/qcow2-source.js";
import type { Extent, ImageDetails, ImageSource } from "../formats/types.js";
import type { ImageReader } from "../providers/provider.js";

export class ReaderInput extends BoundedInput {
  constructor(
    private readonly reader: ImageReader,
    readonly path: string,
  ) {
    super();
  }

  get size(): number {
    return this.reader.size;
  }

  /** Not on this host: the remote bytes' length stands in. */
  get allocatedSize(): number {
    return this.reader.size;
  }

  protected async readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    const n = await this.reader.read(buf.subarray(0, length), position);
    if (n !== length) throw new CorruptImageError(`${this.path}: ${what} at ${position}: the image ended early`);
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}

/** A raw disk read through an ImageInput: every byte is data as far as the map goes; the pipeline finds zeros. */
export class RawInputSource implements ImageSource {
  readonly format = "raw";

  constructor(private readonly input: ReaderInput) {}

  get virtualSize(): number {
    return this.input.size;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.input.path, offset, length, this.virtualSize);
    const out = readDestination(this.input.path, length, into);
    if (length > 0) await this.input.readExact(offset, length, out);
    return out;
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncIterable<Extent> {
    checkDiskRange(this.input.path, offset, length, this.virtualSize);
    if (length > 0) yield { offset, length, kind: "data" };
  }

  async details(): Promise<ImageDetails> {
    return { format: "raw", virtualSize: this.virtualSize, actualSize: this.input.size, formatSpecific: {} };
  }

  close(): Promise<void> {
    return this.input.close();
  }
}

/** Formats whose driver can read from a reader (no local copy). */
export function readableInPlace(format: string): boolean {
  return format === "raw" || format === "vmdk" || format === "qcow2";
}

export async function openReaderSource(reader: ImageReader, format: string, label: string): Promise<ImageSource> {
  const input = new ReaderInput(reader, label);
  if (format === "raw") return new RawInputSource(input);
  if (format === "vmdk") return openVmdkFromInput(input, label);
  if (format === "qcow2") return openQcow2FromInput(input, label);
  await input.close();
  throw new Error(`${label}: ${format} cannot be read in place`);
}
