/**
 * An HTTP image whose server ignores Range: it answered the first ranged GET with 200 and the whole body, so
 * the bytes can be had once, in order, like a pipe's. The body is consumed as the reads ask for it (bytes a
 * read skips are received and dropped), so memory holds a chunk or two, never the image. Reads are served in
 * the order they are made, so a pipeline with several reads in flight, made in increasing order, works; a read
 * of bytes already passed is refused, except in the head, which is kept so that format detection and the
 * driver opened next can both read it. Drivers needing random access refuse the input (`sequential`).
 *
 * A connection that drops cannot be resumed without Range: the read fails, saying so. The connection's idle
 * timeout (a minute) also runs while nobody reads, so a reader that stops for that long loses it too.
 */
import { RemoteInputError, UsageError } from "../errors.js";
import { HttpInputBase } from "./http-input-base.js";
import type { HttpReply, HttpRequester } from "./http-request.js";

/** The head kept for re-reading: format probes read 4 KiB, headers a few more. */
const HEAD_KEPT = 64 * 1024;

export class SequentialHttpInput extends HttpInputBase {
  private readonly body: HttpReply["body"];
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly head: Buffer;
  /** Bytes taken from the body so far. */
  private consumed = 0;
  /** What remains of the body's latest chunk. */
  private leftover: Buffer | null = null;
  /** Each read waits for the one made before it. */
  private queue: Promise<unknown> = Promise.resolve();

  /** @internal */
  constructor(requester: HttpRequester, reply: HttpReply, size: number) {
    super(requester, size);
    this.body = reply.body;
    this.chunks = reply.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.head = Buffer.alloc(Math.min(size, HEAD_KEPT));
  }

  override get sequential(): boolean {
    return true;
  }

  protected release(): void {
    this.body.destroy();
  }

  protected readWithin(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    const turn = this.queue.then(() => this.readInOrder(position, length, buf, what));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async readInOrder(position: number, length: number, buf: Buffer, what: string): Promise<void> {
    this.requester.throwIfAborted();
    const fromHead = Math.max(0, Math.min(length, Math.min(this.consumed, this.head.length) - position));
    if (fromHead > 0) this.head.copy(buf, 0, position, position + fromHead);
    const at = position + fromHead;
    if (fromHead === length) return;
    if (at < this.consumed) {
      throw new UsageError(
        `${this.path}: ${what} at offset ${at} was already passed: the server does not support Range ` +
          "requests, so the image can only be read once, in order",
      );
    }
    await this.take(at - this.consumed, null, 0);
    await this.take(length - fromHead, buf, fromHead);
  }

  /** Takes the body's next `count` bytes into `buf` at `offset`, or drops them when `buf` is null. */
  private async take(count: number, buf: Buffer | null, offset: number): Promise<void> {
    while (count > 0) {
      const chunk = this.leftover ?? (await this.nextChunk());
      const n = Math.min(count, chunk.length);
      if (this.consumed < this.head.length) {
        this.head.set(chunk.subarray(0, Math.min(n, this.head.length - this.consumed)), this.consumed);
      }
      buf?.set(chunk.subarray(0, n), offset);
      offset += n;
      count -= n;
      this.consumed += n;
      this.leftover = n < chunk.length ? chunk.subarray(n) : null;
    }
  }

  private async nextChunk(): Promise<Buffer> {
    const cannotResume = "the server does not support Range requests, so the read cannot resume";
    for (;;) {
      const chunk = await this.chunks.next().catch((e: unknown) => {
        throw this.requester.networkError(`the connection failed at byte ${this.consumed} (${cannotResume})`, e);
      });
      if (chunk.done) {
        throw new RemoteInputError(`${this.path}: the reply ended at byte ${this.consumed} of ${this.size}`);
      }
      this.requester.stats.bytesFetched += chunk.value.length;
      if (chunk.value.length > 0) return chunk.value;
    }
  }
}
