/**
 * An image read where a web server holds it, with HTTP Range requests: a plain server (nginx, Apache, a
 * static file server), an S3 presigned URL, Glance's `GET /v2/images/{id}/file` with its X-Auth-Token.
 *
 * Nothing is asked before the data: the first request is already a ranged GET of the first block, and its
 * Content-Range gives the size. (A presigned URL is signed for GET alone, so a HEAD would be refused.) The
 * reply's ETag, else its Last-Modified, is the image's identity: every later reply must carry the same one and
 * the same total size, or the read stops with an InputChangedError — an object replaced half way must not be
 * read as a mix of two images. Later requests also ask the server to check (If-Match with a strong ETag,
 * If-Unmodified-Since with a date), so a server that honours them answers 412 instead of sending the new bytes.
 *
 * Data comes in fixed blocks kept in a small LRU cache (block-cache.ts), so the many small reads of a driver
 * cost one request per block. A read that continues where the previous one ended is part of a sequential
 * stretch (a raw disk converted in order, or qcow2's L2 table followed by the clusters it maps, which qemu-img
 * writes side by side): the next blocks are requested before they are asked for. An isolated read (an L1
 * table, a far grain table) costs one block. Read-ahead starts only while fewer than `maxRequests` requests
 * run, so memory stays within the cache plus those requests' blocks, whatever the image's size.
 *
 * A server that ignores Range answers the first request with the whole body (200): that body is then read
 * once, in order, as a SequentialHttpInput.
 */
import { InputChangedError, UsageError } from "../errors.js";
import { BlockCache } from "./block-cache.js";
import { BoundedInput } from "./image-input.js";
import { HttpRequester, type HttpInputStats, type HttpReply, type HttpRequestOptions } from "./http-request.js";
import { SequentialHttpInput } from "./http-sequential-input.js";

export type { HttpInputStats } from "./http-request.js";

export interface HttpInputOptions extends HttpRequestOptions {
  /** The size the caller knows the image to have (Glance's record): a server reporting another is an error. */
  expectedSize?: number;
  /** Bytes per request (default 4 MiB). */
  blockSize?: number;
  /**
   * Blocks kept, those in flight included (default 8 of 4 MiB: the block being read, two ahead, and the ones
   * behind that a qcow2 with small clusters returns to for the L2 tables among its data — with 4 blocks of
   * 8 MiB, a 512-byte-cluster image in Glance cost 10 requests for 7 blocks, with 6 one each). 4 MiB blocks
   * rather than 8 keep a conversion over HTTP under 256 MiB of RSS (docs/PERFORMANCE.md).
   */
  cachedBlocks?: number;
  /** Blocks requested ahead of a sequential stretch (default 2). */
  readAhead?: number;
  /** No read-ahead starts while this many requests run (default 4); reads asked for are never held back. */
  maxRequests?: number;
}

const MiB = 2 ** 20;

/** The ETag (else Last-Modified) of the first reply: what identifies the image's version. */
interface Validator {
  readonly header: "etag" | "last-modified";
  readonly value: string;
}

/**
 * Opens `url` with one ranged GET of its first block: a HttpInput when the server answers 206, a
 * SequentialHttpInput when it ignores Range and sends the whole image.
 */
export async function openHttpInput(
  url: string | URL,
  options: HttpInputOptions = {},
): Promise<HttpInput | SequentialHttpInput> {
  const tuning = tuningOf(options);
  const requester = new HttpRequester(url, options);
  try {
    const what = "the first block";
    const first = await requester.retrying(what, async () => {
      const reply = await requester.get({ range: `bytes=0-${tuning.blockSize - 1}` });
      const encoding = reply.header("content-encoding");
      if (encoding && encoding.toLowerCase() !== "identity") {
        requester.discard(reply);
        throw requester.protocolError(`the server sends the image ${encoding}-encoded, not as its stored bytes`);
      }
      if (reply.status === 200) return { reply };
      if (reply.status === 416) {
        // Only an empty image has no byte 0.
        const range = contentRange(reply.header("content-range"));
        if (range?.total !== 0) await requester.refuse(reply, what);
        requester.discard(reply);
        return { size: 0, block: Buffer.alloc(0), validator: validatorOf(reply) };
      }
      if (reply.status !== 206) await requester.refuse(reply, what);
      const range = contentRange(reply.header("content-range"));
      const total = range?.total;
      if (total === undefined || range?.start !== 0 || range.end !== Math.min(total, tuning.blockSize) - 1) {
        requester.discard(reply);
        throw requester.protocolError(
          `${what}: a partial reply without a usable Content-Range (${reply.header("content-range") ?? "none"})`,
        );
      }
      // Not from Node's shared pool: the cache hands this buffer on to later blocks.
      const block = Buffer.allocUnsafeSlow(range.end + 1);
      await requester.readBody(reply, block, what);
      return { size: total, block, validator: validatorOf(reply) };
    });
    if (first.reply) {
      const length = Number(first.reply.header("content-length") ?? NaN);
      if (!Number.isSafeInteger(length)) {
        throw requester.protocolError("the server supports no Range requests and sends no Content-Length: no size");
      }
      checkExpectedSize(requester, options, length);
      return new SequentialHttpInput(requester, first.reply, length);
    }
    checkExpectedSize(requester, options, first.size);
    return new HttpInput(requester, first.size, first.validator, first.block, tuning);
  } catch (e) {
    requester.close();
    throw e;
  }
}

/** A remote image read in blocks with Range requests. Opened by openHttpInput. */
export class HttpInput extends BoundedInput {
  readonly path: string;
  private readonly blocks: BlockCache;
  private readonly blockCount: number;
  /** Block requests under way (retries' waits included). */
  private running = 0;
  /** The last block of the latest read; none yet, so that probing the head alone reads nothing ahead. */
  private previousLast = -2;

  /** @internal */
  constructor(
    private readonly requester: HttpRequester,
    readonly size: number,
    private readonly validator: Validator | null,
    firstBlock: Buffer,
    private readonly tuning: Tuning,
  ) {
    super();
    this.path = requester.name;
    const { blockSize } = tuning;
    this.blockCount = Math.ceil(size / blockSize);
    this.blocks = new BlockCache(
      blockSize,
      tuning.cachedBlocks,
      (index) => Math.min(size, (index + 1) * blockSize) - index * blockSize,
      (index, into) => this.fetchBlock(index * blockSize, into),
    );
    if (size > 0) this.blocks.adopt(0, firstBlock);
  }

  get stats(): Readonly<HttpInputStats> {
    return this.requester.stats;
  }

  /** Not on this host: the remote bytes' length stands in. */
  get allocatedSize(): number {
    return this.size;
  }

  /** Cancels the requests in flight (later reads fail) and lets go of the cached blocks. */
  async close(): Promise<void> {
    this.requester.close();
    this.blocks.clear();
  }

  protected async readWithin(position: number, length: number, buf: Buffer, _what: string): Promise<void> {
    this.requester.throwIfAborted();
    if (length === 0) return;
    const { blockSize, maxRequests } = this.tuning;
    const first = Math.floor(position / blockSize);
    const last = Math.floor((position + length - 1) / blockSize);
    // Continuing where the previous read ended (its last block or the next) makes a sequential stretch.
    const sequential = first === this.previousLast || first === this.previousLast + 1;
    this.previousLast = last;
    const copy = (index: number) => (block: Buffer) => {
      const blockStart = index * blockSize;
      const from = Math.max(position, blockStart);
      const to = Math.min(position + length, blockStart + block.length);
      block.copy(buf, from - position, from - blockStart, to - blockStart);
    };
    // A read of many blocks asks for them a few at a time, so that it alone cannot open a hundred requests.
    for (let group = first; group <= last; group += maxRequests) {
      const pending: Promise<void>[] = [];
      for (let i = group; i <= Math.min(last, group + maxRequests - 1); i++) pending.push(this.blocks.with(i, copy(i)));
      if (group === first && sequential) this.readAhead(last + 1);
      // Every block is waited for, even after one has failed: the caller may reuse `buf` once this returns,
      // and a block arriving later must not copy into it then.
      const settled = await Promise.allSettled(pending);
      const failed = settled.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    }
  }

  private readAhead(from: number): void {
    const until = Math.min(this.blockCount, from + this.tuning.readAhead);
    for (let i = from; i < until && this.running < this.tuning.maxRequests; i++) this.blocks.prefetch(i);
  }

  private async fetchBlock(start: number, into: Buffer): Promise<void> {
    const end = start + into.length - 1;
    const what = `bytes ${start}-${end}`;
    this.running++;
    try {
      await this.requester.retrying(what, async () => {
        const reply = await this.requester.get({ range: `bytes=${start}-${end}`, ...conditions(this.validator) });
        if (reply.status === 412 || reply.status === 416) {
          this.requester.discard(reply);
          throw this.changed(`the server answered HTTP ${reply.status} to a request for ${what}`);
        }
        // Error replies describe themselves, not the image: only a 200 or 206 carries its validator.
        if (reply.status === 200 || reply.status === 206) this.checkValidator(reply);
        if (reply.status === 200) {
          this.requester.discard(reply);
          throw this.requester.protocolError(`${what}: the server ignored a Range request it honoured before`, 200);
        }
        if (reply.status !== 206) await this.requester.refuse(reply, what);
        const range = contentRange(reply.header("content-range"));
        if (range?.total !== undefined && range.total !== this.size) {
          this.requester.discard(reply);
          throw this.changed(`its size went from ${this.size} to ${range.total} bytes`);
        }
        if (range?.start !== start || range.end !== end) {
          this.requester.discard(reply);
          throw this.requester.protocolError(
            `asked for ${what}, the server sent ${reply.header("content-range") ?? "no Content-Range"}`,
          );
        }
        await this.requester.readBody(reply, into, what);
      });
    } finally {
      this.running--;
    }
  }

  private checkValidator(reply: HttpReply): void {
    if (!this.validator) return;
    const now = reply.header(this.validator.header);
    if (now === this.validator.value) return;
    this.requester.discard(reply);
    const label = this.validator.header === "etag" ? "ETag" : "Last-Modified";
    throw this.changed(`its ${label} went from ${this.validator.value} to ${now ?? "none"}`);
  }

  private changed(detail: string): InputChangedError {
    return new InputChangedError(
      `${this.path}: the image changed while it was being read (${detail}); the bytes read so far cannot be used`,
    );
  }
}

interface Tuning {
  readonly blockSize: number;
  readonly cachedBlocks: number;
  readonly readAhead: number;
  readonly maxRequests: number;
}

function tuningOf(options: HttpInputOptions): Tuning {
  const tuning = {
    blockSize: options.blockSize ?? 4 * MiB,
    cachedBlocks: options.cachedBlocks ?? 8,
    readAhead: options.readAhead ?? 2,
    maxRequests: options.maxRequests ?? 4,
  };
  const bad = (name: keyof Tuning, min: number, max: number) =>
    !Number.isSafeInteger(tuning[name]) || tuning[name] < min || tuning[name] > max;
  if (
    bad("blockSize", 4096, 256 * MiB) ||
    bad("cachedBlocks", 1, 1024) ||
    bad("readAhead", 0, 64) ||
    bad("maxRequests", 1, 64)
  ) {
    throw new UsageError(`bad HTTP input tuning: ${JSON.stringify(tuning)}`);
  }
  return tuning;
}

function checkExpectedSize(requester: HttpRequester, options: HttpInputOptions, size: number): void {
  if (!Number.isSafeInteger(size)) throw requester.protocolError(`the server claims an image of ${size} bytes`);
  if (options.expectedSize !== undefined && options.expectedSize !== size) {
    throw requester.protocolError(`the server holds ${size} bytes, ${options.expectedSize} were expected`);
  }
}

function validatorOf(reply: HttpReply): Validator | null {
  const etag = reply.header("etag");
  if (etag) return { header: "etag", value: etag };
  const modified = reply.header("last-modified");
  return modified ? { header: "last-modified", value: modified } : null;
}

/** Preconditions that make a server refuse (412) rather than send another version's bytes. */
function conditions(validator: Validator | null): Record<string, string> {
  if (!validator) return {};
  if (validator.header === "last-modified") return { "if-unmodified-since": validator.value };
  // If-Match compares strongly: a weak ETag would never match, even for an unchanged image.
  return validator.value.startsWith("W/") ? {} : { "if-match": validator.value };
}

/** `bytes START-END/TOTAL` (TOTAL may be `*`), or `bytes *\/TOTAL` in a 416. */
function contentRange(header: string | null): { start?: number; end?: number; total?: number } | null {
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(header ?? "");
  if (!m) return null;
  const number = (s: string | undefined) => (s === undefined || s === "*" ? undefined : Number(s));
  return { start: number(m[1]), end: number(m[2]), total: number(m[3]) };
}
