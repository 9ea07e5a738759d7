/**
 * The tar stream a bundle starts from: one regular member holding the image, owner 0, mtime 0 (as euca2ools'
 * tarfile writes it, so two runs over one image give one tar digest), then the end-of-archive blocks padded to
 * a 10 KiB record as Python's tarfile pads. Up to 8 GiB - 1 the header is USTAR; above, GNU with a base-256 size.
 * Up to 8 GiB the stream is byte for byte the one euca2ools makes (so is its digest): Python's tarfile leaves the
 * device number fields empty, which the shared header encoder fills with zeros, so they are cleared here.
 * The image is read in chunks with a few reads ahead; its holes are not read at all but given as zeros.
 */
import type { ImageSource } from "../types.js";
import { TAR_BLOCK, encodeTarHeader, flavourForSize, tarPadding } from "../ova/tar-header.js";

/** Python tarfile's record: the archive is padded with zeros to a multiple of this. */
export const TAR_RECORD = 20 * TAR_BLOCK;

/** The tar archive's total length for an image of `size` bytes. */
export function imageTarLength(size: number): number {
  const members = TAR_BLOCK + size + tarPadding(size) + 2 * TAR_BLOCK;
  return Math.ceil(members / TAR_RECORD) * TAR_RECORD;
}

export interface ImageTarOptions {
  readonly name: string;
  readonly chunkSize: number;
  readonly signal?: AbortSignal;
  /** Called with each chunk's length once it is read: data bytes, or zero bytes not read. */
  readonly onChunk?: (length: number, zero: boolean) => void;
}

/** Yields the tar archive in pieces: the header, the image in chunks of `chunkSize`, then the trailer. */
export async function* imageTarStream(source: ImageSource, options: ImageTarOptions): AsyncGenerator<Buffer> {
  const size = source.virtualSize;
  yield asPythonWritesIt(encodeTarHeader({ name: options.name, size, mtime: 0, mode: 0o644 }, flavourForSize(size)));
  const zeroRanges = await zeroRangesOf(source);
  const readAhead: Promise<Buffer>[] = [];
  // Holes are given as one shared zero buffer, never written to: a fresh one per chunk cost 4 GiB of allocations
  // for a 4 GiB sparse disk, and the peak memory with it.
  const zeros = Buffer.alloc(options.chunkSize);
  let next = 0;
  const start = () => {
    const offset = next;
    const length = Math.min(options.chunkSize, size - offset);
    next += length;
    const zero = zeroRanges.covers(offset, length);
    const read = zero
      ? Promise.resolve(zeros.subarray(0, length))
      : source.read(offset, length, Buffer.allocUnsafe(length));
    const chunk = read.then((data) => (options.onChunk?.(length, zero), data));
    // A read ahead may fail while the consumer is still busy with an earlier chunk: its rejection is seen when
    // the chunk is awaited (or settled in `finally`), not reported as unhandled the moment it happens.
    chunk.catch(() => undefined);
    readAhead.push(chunk);
  };
  try {
    while (next < size || readAhead.length) {
      while (next < size && readAhead.length < 3) start();
      options.signal?.throwIfAborted();
      yield await readAhead.shift()!;
    }
  } finally {
    await Promise.allSettled(readAhead);
  }
  yield Buffer.alloc(imageTarLength(size) - TAR_BLOCK - size);
}

/** Device major and minor (bytes 329..344) empty, as tarfile writes them for a regular file; checksum redone. */
function asPythonWritesIt(header: Buffer): Buffer {
  header.fill(0, 329, 345);
  return withTarChecksum(header);
}

/** Sets a header's checksum field for its current bytes (after a field was changed). */
export function withTarChecksum(header: Buffer): Buffer {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return header;
}

/** The source's holes and zero extents, to answer "is this chunk all zeros?" without reading it. */
async function zeroRangesOf(source: ImageSource): Promise<{ covers(offset: number, length: number): boolean }> {
  const ranges: [number, number][] = [];
  for await (const extent of source.extents()) {
    if (extent.kind === "data") continue;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === extent.offset) last[1] += extent.length;
    else ranges.push([extent.offset, extent.offset + extent.length]);
    // A map in millions of pieces (a fragmented file) is not worth its memory: read everything instead.
    if (ranges.length > 1_000_000) return { covers: () => false };
  }
  let cursor = 0;
  return {
    // Chunks are asked for in increasing order, so a cursor walks the ranges once.
    covers(offset, length) {
      while (cursor < ranges.length && ranges[cursor]![1] <= offset) cursor++;
      const range = ranges[cursor];
      return range !== undefined && range[0] <= offset && range[1] >= offset + length;
    },
  };
}
