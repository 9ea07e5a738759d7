/**
 * An HTTP image whose server ignores Range: it answered the first ranged GET with 200 and the whole body, so
 * the bytes can be had once, in order, like a pipe's — a StreamInput over the reply's body, with the size the
 * server announced. Bytes a read skips are received and dropped, so memory holds a chunk or two, never the
 * image; the head is kept so that format detection and the driver opened next can both read it. Drivers
 * needing random access refuse the input (`sequential`).
 *
 * A connection that drops cannot be resumed without Range: the read fails, saying so. The connection's idle
 * timeout (a minute) also runs while nobody reads, so a reader that stops for that long loses it too.
 */
import { RemoteInputError, UsageError, type ChromogenicError } from "../errors.js";
import type { HttpInputStats, HttpReply, HttpRequester } from "./http-request.js";
import { StreamInput } from "./stream-input.js";

/** The head kept for re-reading: format probes read 4 KiB, headers a few more. */
const HEAD_KEPT = 64 * 1024;
const CANNOT_RESUME = "the server does not support Range requests, so the read cannot resume";

export class SequentialHttpInput extends StreamInput {
  /** @internal */
  constructor(
    private readonly requester: HttpRequester,
    reply: HttpReply,
    size: number,
  ) {
    super(reply.body.stream(), requester.name, { size, headKept: HEAD_KEPT });
  }

  get stats(): Readonly<HttpInputStats> {
    return this.requester.stats;
  }

  protected override passedError(position: number, what: string): ChromogenicError {
    return new UsageError(
      `${this.path}: ${what} at offset ${position} was already passed: the server does not support Range ` +
        "requests, so the image can only be read once, in order",
    );
  }

  protected override endedError(): ChromogenicError {
    return new RemoteInputError(`${this.path}: the reply ended at byte ${this.consumed} of ${this.size}`);
  }

  protected override streamError(error: unknown): unknown {
    this.requester.throwIfAborted();
    return this.requester.networkError(`the connection failed at byte ${this.consumed} (${CANNOT_RESUME})`, error);
  }

  override async close(): Promise<void> {
    this.requester.close();
    await super.close();
  }
}
