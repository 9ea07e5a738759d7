/**
 * An S3 object read in place with ranged GetObject calls, as an input the format engine converts from: an AMI
 * exported by ExportImage, read without a local copy. Through the S3 client rather than a presigned URL, so a
 * long read signs each request with credentials that are refreshed as they expire.
 *
 * The object's ETag (from HeadObject when it is opened) is its identity: every reply must carry the same one,
 * and each request asks S3 to check it too (If-Match, answered 412 when the object was replaced), so an object
 * replaced half way is an InputChangedError, never a mix of two disks.
 *
 * Data comes in fixed blocks held in a bounded LRU cache (formats/inputs/block-cache.ts, as HttpInput does): a
 * read that continues where the previous one ended requests the next blocks ahead, and read-ahead starts only
 * while fewer than `maxRequests` requests run, so memory stays within the cache whatever the object's size.
 */
import { GetObjectCommand, type GetObjectCommandOutput } from "@aws-sdk/client-s3";
import { InputChangedError } from "../../formats/errors.js";
import { BlockCache } from "../../formats/inputs/block-cache.js";
import { BoundedInput } from "../../formats/inputs/image-input.js";
import { AwsServiceError } from "../ec2/aws-errors.js";
import { S3Connection } from "../ec2/s3-connection.js";
import { headObject } from "../ec2/s3-objects.js";
import { AbortedError, ChromogenicError, TransferError, UsageError } from "../../util/errors.js";

const MiB = 2 ** 20;

export interface S3ObjectInputOptions {
  /**
   * Bytes per request (default 8 MiB: against the test Swift a 1 GiB object read in 4 MiB blocks took twice as
   * long as in 16 MiB ones, the per-request cost dominating).
   */
  readonly blockSize?: number;
  /** Blocks kept, those in flight included (default 6, 48 MiB: the block read, two ahead, some behind). */
  readonly cachedBlocks?: number;
  /** Blocks requested ahead of a sequential stretch (default 2). */
  readonly readAhead?: number;
  /** No read-ahead starts while this many requests run (default 4). */
  readonly maxRequests?: number;
  /** Tries per block when the body breaks off (the SDK retries the request itself before that). */
  readonly attempts?: number;
  readonly signal?: AbortSignal;
  /** Runs once when the input is closed (the exported object's removal). */
  readonly onClose?: () => Promise<void>;
}

/** Opens s3://bucket/key for positional reads; a missing object is a clear ENOENT. */
export async function openS3ObjectInput(
  s3: S3Connection,
  bucket: string,
  key: string,
  options: S3ObjectInputOptions = {},
): Promise<S3ObjectInput> {
  const head = await headObject(s3, bucket, key, options.signal);
  if (!head) throw new ChromogenicError(`${S3Connection.location(bucket, key)} does not exist`, "ENOENT");
  return new S3ObjectInput(s3, bucket, key, head.size, head.etag, options);
}

export class S3ObjectInput extends BoundedInput {
  readonly path: string;
  /** GetObject calls made, for tests and the benchmark. */
  requests = 0;
  private readonly blocks: BlockCache;
  private readonly blockSize: number;
  private readonly blockCount: number;
  private readonly readAheadBlocks: number;
  private readonly maxRequests: number;
  private readonly attempts: number;
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;
  private running = 0;
  private previousLast = -2;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly s3: S3Connection,
    private readonly bucket: string,
    private readonly key: string,
    readonly size: number,
    /** Without quotes, as headObject gives it. */
    private readonly etag: string | undefined,
    private readonly options: S3ObjectInputOptions = {},
  ) {
    super();
    this.path = S3Connection.location(bucket, key);
    this.blockSize = bounded("blockSize", options.blockSize ?? 8 * MiB, 4096, 256 * MiB);
    this.readAheadBlocks = bounded("readAhead", options.readAhead ?? 2, 0, 64);
    this.maxRequests = bounded("maxRequests", options.maxRequests ?? 4, 1, 64);
    this.attempts = bounded("attempts", options.attempts ?? 3, 1, 10);
    const cached = bounded("cachedBlocks", options.cachedBlocks ?? 6, 1, 1024);
    this.blockCount = Math.ceil(size / this.blockSize);
    this.signal = options.signal ? AbortSignal.any([options.signal, this.controller.signal]) : this.controller.signal;
    this.blocks = new BlockCache(
      this.blockSize,
      cached,
      (index) => Math.min(size, (index + 1) * this.blockSize) - index * this.blockSize,
      (index, into) => this.fetchBlock(index * this.blockSize, into),
    );
  }

  /** Not on this host: the object's length stands in. */
  get allocatedSize(): number {
    return this.size;
  }

  /** Cancels the requests in flight, lets go of the cache, then runs onClose (once, however often called). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.controller.abort();
      this.blocks.clear();
      await this.options.onClose?.();
    })();
    return this.closed;
  }

  protected async readWithin(position: number, length: number, buf: Buffer): Promise<void> {
    if (this.signal.aborted) throw new AbortedError(`${this.path}: read after the input was closed or cancelled`);
    if (length === 0) return;
    const first = Math.floor(position / this.blockSize);
    const last = Math.floor((position + length - 1) / this.blockSize);
    const sequential = first === this.previousLast || first === this.previousLast + 1;
    this.previousLast = last;
    const copy = (index: number) => (block: Buffer) => {
      const blockStart = index * this.blockSize;
      const from = Math.max(position, blockStart);
      const to = Math.min(position + length, blockStart + block.length);
      block.copy(buf, from - position, from - blockStart, to - blockStart);
    };
    for (let group = first; group <= last; group += this.maxRequests) {
      const pending: Promise<void>[] = [];
      for (let i = group; i <= Math.min(last, group + this.maxRequests - 1); i++) {
        pending.push(this.blocks.with(i, copy(i)));
      }
      if (group === first && sequential) this.readAhead(last + 1);
      // Every block is waited for, even after one failed: none may copy into `buf` once this has returned.
      const settled = await Promise.allSettled(pending);
      const failed = settled.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    }
  }

  private readAhead(from: number): void {
    const until = Math.min(this.blockCount, from + this.readAheadBlocks);
    for (let i = from; i < until && this.running < this.maxRequests; i++) this.blocks.prefetch(i);
  }

  private async fetchBlock(start: number, into: Buffer): Promise<void> {
    this.running++;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.getRange(start, into);
          return;
        } catch (e) {
          // A body cut off mid-way is worth another try; what S3 refused, or a changed object, is not.
          if (!(e instanceof TransferError) || attempt >= this.attempts || this.signal.aborted) throw e;
        }
      }
    } finally {
      this.running--;
    }
  }

  private async getRange(start: number, into: Buffer): Promise<void> {
    const end = start + into.length - 1;
    const what = `bytes ${start}-${end}`;
    this.requests++;
    let out: GetObjectCommandOutput;
    try {
      out = await this.s3.send<GetObjectCommandOutput>(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Range: `bytes=${start}-${end}`,
          ...(this.etag ? { IfMatch: `"${this.etag}"` } : {}),
        }),
        { call: "GetObject", subject: `${this.path} (${what})` },
        this.signal,
      );
    } catch (e) {
      if (e instanceof AwsServiceError && (e.status === 412 || e.status === 404 || e.status === 416)) {
        throw this.changed(`S3 answered HTTP ${e.status} (${e.awsCode ?? "no code"}) to a request for ${what}`);
      }
      throw e;
    }
    const body = out.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
    const etag = out.ETag?.replace(/"/g, "");
    if (this.etag !== undefined && etag !== this.etag) {
      body?.destroy?.();
      throw this.changed(`its ETag went from ${this.etag} to ${etag ?? "none"}`);
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(out.ContentRange ?? "");
    if (!range || Number(range[1]) !== start || Number(range[2]) !== end) {
      body?.destroy?.();
      throw new ChromogenicError(
        `${this.path}: asked for ${what}, S3 sent ${out.ContentRange ?? "no Content-Range"}`,
        "EREMOTE",
      );
    }
    if (range[3] !== "*" && Number(range[3]) !== this.size) {
      body?.destroy?.();
      throw this.changed(`its size went from ${this.size} to ${range[3]} bytes`);
    }
    let filled = 0;
    try {
      for await (const chunk of body ?? []) {
        if (filled + chunk.byteLength > into.length) {
          body?.destroy?.();
          throw new ChromogenicError(`${this.path}: S3 sent more than the ${what} asked for`, "EREMOTE");
        }
        into.set(chunk, filled);
        filled += chunk.byteLength;
      }
    } catch (e) {
      if (e instanceof ChromogenicError) throw e;
      throw new TransferError(`${this.path}: ${what} broke off after ${filled} bytes: ${(e as Error).message}`);
    }
    if (filled !== into.length)
      throw new TransferError(`${this.path}: ${filled} of the ${into.length} bytes of ${what} arrived`);
  }

  private changed(detail: string): InputChangedError {
    return new InputChangedError(
      `${this.path}: the object changed while it was being read (${detail}); the bytes read so far cannot be used`,
    );
  }
}

function bounded(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`S3 object input: ${name} ${value} is not a whole number from ${min} to ${max}`);
  }
  return value;
}
