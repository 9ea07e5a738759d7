/**
 * An input that can be read only once, in order: standard input given as `-`, or any other byte stream. The
 * formats that can be read in order (raw, a streamOptimized VMDK, an OVA whose disks come after its
 * descriptor) read it as it arrives; the others are refused by requireRandomAccess before they read a byte.
 *
 * Reads are served in the order they are called, each at or after the end of the one before (the convert
 * pipeline's reads ahead are in increasing order); bytes between two reads are skipped. The stream's first
 * HEAD_KEPT bytes stay in memory, so format detection and a driver's header reads may go back into them.
 * A pipe says nothing of its length: `size` is the largest safe integer until the stream ends (or what the
 * caller knows it to be: an HTTP body's Content-Length), and a read beyond the real end fails with a message
 * giving the length there was. Subclasses say what going back or a failing stream means for their source
 * (SequentialHttpInput: a server without Range).
 */
import type { Readable } from "node:stream";
import { CorruptImageError, type ChromogenicError } from "../errors.js";
import { BoundedInput } from "./image-input.js";

/** Bytes from the stream's start kept for going back: probes (4 KiB), headers, an OVA's first tar headers. */
export const HEAD_KEPT = 1 * 2 ** 20;

export interface StreamInputOptions {
  /** The stream's length when known beforehand (an HTTP body's Content-Length). */
  readonly size?: number;
  /** Bytes of the head kept for going back (default HEAD_KEPT). */
  readonly headKept?: number;
}

export class StreamInput extends BoundedInput {
  private readonly chunks: AsyncIterator<Buffer | string>;
  private readonly head: Buffer;
  private headBytes = 0;
  /** Bytes taken from the stream so far (the position of `pending`'s first byte plus its length). */
  protected consumed = 0;
  /** Bytes taken from the stream but not yet handed to a read. */
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private queue: Promise<unknown> = Promise.resolve();
  size: number;
  private readonly sizeDeclared: boolean;

  constructor(
    protected readonly stream: Readable,
    /** Name shown in messages ("-" for standard input). */
    readonly path: string,
    options: StreamInputOptions = {},
  ) {
    super();
    this.chunks = stream[Symbol.asyncIterator]();
    this.size = options.size ?? Number.MAX_SAFE_INTEGER;
    this.sizeDeclared = options.size !== undefined;
    this.head = Buffer.alloc(Math.min(options.headKept ?? HEAD_KEPT, this.size));
  }

  /** The error for a read of bytes already passed and no longer in the kept head. */
  protected passedError(position: number, what: string): ChromogenicError {
    return new CorruptImageError(
      `${this.path}: ${what} at offset ${position} lies behind what was already read from an input that ` +
        "can only be read once in order; save it to a file and read it from there",
    );
  }

  /** The error for a stream that ended before the bytes asked for. */
  protected endedError(position: number, length: number, what: string): ChromogenicError {
    return new CorruptImageError(
      `${this.path}: the input ended after ${this.consumed} bytes, before ${what} at offset ${position} ` +
        `(+${length} bytes)`,
    );
  }

  /** The error for a stream that failed (by default, the stream's own error). */
  protected streamError(error: unknown): unknown {
    return error;
  }

  /** Called for every chunk taken from the stream. */
  protected received(_bytes: number): void {}

  override get sequential(): boolean {
    return true;
  }

  /** Bytes read from the stream so far; once it ended, its length. */
  get allocatedSize(): number {
    return this.consumed;
  }

  protected readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    return this.inOrder(() => this.fill(position, length, buf, what, false)).then(() => undefined);
  }

  /** Bytes past the end of the stream read as zeros (format detection reads a head the stream may not have). */
  override async readPadded(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const buf = into ?? Buffer.allocUnsafe(length);
    const filled = await this.inOrder(() => this.fill(position, length, buf, "data", true));
    buf.fill(0, filled, length);
    return buf.subarray(0, length);
  }

  /** Runs reads one at a time, in call order: a read ahead must not overtake the one before it. */
  private inOrder<T>(read: () => Promise<T>): Promise<T> {
    const done = this.queue.then(read);
    this.queue = done.catch(() => undefined);
    return done;
  }

  /** Fills `buf` with the bytes at `position`; returns how many there were (fewer only with `stopAtEnd`). */
  private async fill(position: number, length: number, buf: Buffer, what: string, stopAtEnd: boolean) {
    let filled = 0;
    const pendingStart = this.consumed - this.pending.length;
    if (position < pendingStart) {
      // Going back is possible only into the kept head.
      const n = Math.min(length, pendingStart - position);
      if (position + n > this.headBytes) throw this.passedError(position, what);
      this.head.copy(buf, 0, position, position + n);
      filled = n;
    }
    while (filled < length) {
      const at = position + filled;
      const start = this.consumed - this.pending.length;
      if (at < this.consumed) {
        const from = at - start;
        const n = Math.min(length - filled, this.pending.length - from);
        this.pending.copy(buf, filled, from, from + n);
        filled += n;
        this.pending = this.pending.subarray(from + n);
        continue;
      }
      this.pending = Buffer.alloc(0);
      if (!(await this.pull())) {
        if (stopAtEnd) return filled;
        throw this.endedError(position, length, what);
      }
    }
    return filled;
  }

  /** Takes the next chunk from the stream into `pending`; false at its end. */
  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    let next;
    do {
      next = await this.chunks.next().catch((e: unknown) => {
        throw this.streamError(e);
      });
    } while (!next.done && next.value.length === 0);
    if (next.done) {
      this.ended = true;
      // An unknown length is now known; a declared one stays, so reads past the early end say it ended early.
      if (!this.sizeDeclared) this.size = this.consumed;
      return false;
    }
    const chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
    this.received(chunk.length);
    if (this.headBytes < this.head.length) this.headBytes += chunk.copy(this.head, this.headBytes);
    this.pending = chunk;
    this.consumed += chunk.length;
    return true;
  }

  async close(): Promise<void> {
    if (!this.ended) this.stream.destroy();
  }
}
