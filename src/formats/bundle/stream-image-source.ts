/**
 * A raw disk of known length read once, in order, from a stream: what a store's upload hands the bundle writer
 * (a provider receives the image as bytes, not as a file). writeBundle reads its source in increasing order with
 * a few reads started ahead; each read here waits for the one before it, takes exactly its bytes from the stream
 * and keeps the rest for the next. A read out of order, or a stream that ends early or runs long, is an error.
 */
import type { Extent, ImageDetails, ImageSource } from "../types.js";
import { CorruptImageError } from "../errors.js";

export function streamImageSource(data: AsyncIterable<Uint8Array>, size: number, label: string): ImageSource {
  const iterator = data[Symbol.asyncIterator]();
  let pending: Buffer = Buffer.alloc(0);
  let position = 0;
  let queue: Promise<unknown> = Promise.resolve();

  async function take(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (offset !== position) throw new RangeError(`${label}: read at ${offset}, the stream is at ${position}`);
    const out = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      if (pending.length === 0) {
        const next = await iterator.next();
        if (next.done) throw new CorruptImageError(`${label}: the data ended at byte ${position + filled} of ${size}`);
        pending = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      }
      const n = Math.min(length - filled, pending.length);
      pending.copy(out, filled, 0, n);
      pending = pending.subarray(n);
      filled += n;
    }
    position += length;
    if (position === size && pending.length === 0 && !(await iterator.next()).done) {
      throw new CorruptImageError(`${label}: the data runs past the ${size} bytes it was said to have`);
    }
    return out;
  }

  return {
    format: "raw",
    virtualSize: size,
    read(offset, length, into) {
      const result = queue.then(() => take(offset, length, into));
      queue = result.catch(() => undefined);
      return result;
    },
    async *extents(offset = 0, length = size - offset): AsyncGenerator<Extent> {
      if (length > 0) yield { offset, length, kind: "data" };
    },
    async details(): Promise<ImageDetails> {
      return { format: "raw", virtualSize: size, actualSize: size, formatSpecific: { stream: true } };
    },
    async close(): Promise<void> {
      await iterator.return?.();
    },
  };
}
