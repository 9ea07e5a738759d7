import { availableParallelism } from "node:os";
import { CompressionLanes, type CompressionCodec } from "./compression-lanes.js";

export { NOT_COMPRESSED, type CompressionCodec } from "./compression-lanes.js";

/**
 * Compresses many independent blocks concurrently on libuv's threadpool while handing the results back
 * strictly in submission order, with a bounded number of blocks in flight so memory stays flat however large
 * the image is.
 *
 * Give it a `codec` (preferred: long-lived compressors, see compression-lanes.ts, about 35 µs of main thread
 * per block) or any asynchronous `compress` function (node:zlib's one-shot functions cost 60-80 µs of main
 * thread per 64 KiB block, as much as zstd's own work).
 *
 * libuv's threadpool is sized once, from UV_THREADPOOL_SIZE, the first time anything uses it. Its default of
 * 4 threads would leave most cores of a large machine idle, so this module raises it while it is being
 * imported, which in the CLI (through the driver registry's static imports) is before any file is opened.
 * An explicit UV_THREADPOOL_SIZE from the user is left alone.
 */
const cores = availableParallelism();
// Two threads more than cores so file reads and writes, which share the pool, are not starved by compression.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, cores + 2));

/** Blocks in flight by default: enough to keep every thread busy while finished blocks wait for their turn. */
export function defaultCompressionConcurrency(): number {
  const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return 4 * Math.max(1, Math.min(threads, cores));
}

/** Input bytes a codec pool keeps in flight at most by default. */
const MAX_BYTES_IN_FLIGHT = 32 * 2 ** 20;

/** Copies of submitted blocks kept for reuse (see submitCopy): about what is in flight, bounded by bytes. */
const SPARE_BYTES = 16 * 2 ** 20;
const MAX_SPARES = 64;

interface PendingJob<Tag> {
  readonly tag: Tag;
  readonly input: Buffer;
  readonly output: Promise<Buffer>;
  /** `input` is the pool's own copy (submitCopy), reused once delivered. */
  readonly recycle: boolean;
  settled: boolean;
}

export interface CompressionPoolOptions<Tag> {
  /** The codec each block is compressed with, as one independent unit. Give this or `compress`. */
  readonly codec?: CompressionCodec;
  /** With `codec`: the largest block submitted (sizes buffers and the zstd window). */
  readonly blockSize?: number;
  /**
   * With `codec`: deliver NOT_COMPRESSED (an empty buffer) for blocks a fast check finds incompressible, as
   * CompressionLanes explains. For formats that may store a block uncompressed.
   */
  readonly skipIncompressible?: boolean;
  /** Compresses one block; may run concurrently with others. It must not keep `input` after resolving. */
  readonly compress?: (input: Buffer) => Promise<Buffer>;
  /**
   * Receives each block's result, one at a time and in submission order. Once the returned promise resolves
   * the pool is done with `input` (the submitter may reuse it).
   */
  readonly deliver: (tag: Tag, input: Buffer, output: Buffer) => Promise<void>;
  /** Most blocks compressing or waiting for delivery at once. */
  readonly maxInFlight?: number;
}

export class CompressionPool<Tag> {
  private readonly queue: PendingJob<Tag>[] = [];
  private readonly maxInFlight: number;
  private readonly compress: (input: Buffer) => Promise<Buffer>;
  private readonly lanes: CompressionLanes | undefined;
  private readonly blockSize: number;
  /** Buffers of `blockSize` bytes that carried a block already delivered. */
  private readonly spares: Buffer[] = [];
  private readonly maxSpares: number;
  private abandoned = false;

  constructor(private readonly options: CompressionPoolOptions<Tag>) {
    if ((options.codec === undefined) === (options.compress === undefined)) {
      throw new Error("CompressionPool needs exactly one of codec and compress");
    }
    const blockSize = options.blockSize ?? 64 * 1024;
    this.blockSize = blockSize;
    this.maxSpares = Math.min(MAX_SPARES, Math.max(2, Math.floor(SPARE_BYTES / blockSize)));
    if (options.codec) {
      const lanes = new CompressionLanes(options.codec, blockSize, { skipIncompressible: options.skipIncompressible });
      this.lanes = lanes;
      this.compress = (input) => lanes.compress(input);
      // Each lane compressing one block with two more waiting, so no thread idles between blocks or behind a
      // slow block at the head of the line; large blocks on many cores are capped by bytes instead.
      const byMemory = Math.max(4, Math.floor(MAX_BYTES_IN_FLIGHT / blockSize));
      this.maxInFlight = Math.max(1, options.maxInFlight ?? Math.min(3 * lanes.count, byMemory));
    } else {
      this.compress = options.compress!;
      this.maxInFlight = Math.max(1, options.maxInFlight ?? defaultCompressionConcurrency());
    }
  }

  /**
   * Starts compressing `input` (owned by the pool from now on) and delivers whatever has finished at the head
   * of the line. Resolves once there is room for another block; callers must not call it concurrently.
   */
  submit(tag: Tag, input: Buffer): Promise<void> {
    return this.enqueue(tag, input, false);
  }

  /**
   * As submit, but the pool compresses a copy of `data`, so the caller may reuse `data` at once. The copies
   * are recycled once delivered, so a steady stream of blocks allocates nothing.
   */
  submitCopy(tag: Tag, data: Buffer): Promise<void> {
    const recycle = data.length === this.blockSize;
    const copy = (recycle ? this.spares.pop() : undefined) ?? Buffer.allocUnsafeSlow(data.length);
    data.copy(copy);
    return this.enqueue(tag, copy, recycle);
  }

  private async enqueue(tag: Tag, input: Buffer, recycle: boolean): Promise<void> {
    if (this.abandoned) throw new Error("compression pool used after it was abandoned");
    const output = this.compress(input);
    const job: PendingJob<Tag> = { tag, input, output, recycle, settled: false };
    // A rejection is reported when the job reaches the head of the line; until then it must not count as unhandled.
    output.then(
      () => (job.settled = true),
      () => (job.settled = true),
    );
    this.queue.push(job);
    while (this.queue.length >= this.maxInFlight) await this.deliverHead();
    while (this.queue[0]?.settled) await this.deliverHead();
  }

  /** Waits for every submitted block and delivers them all. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.deliverHead();
  }

  /** Forgets queued blocks after an error; compressions already running finish and are discarded. */
  abandon(): void {
    this.abandoned = true;
    this.queue.length = 0;
    this.lanes?.close();
  }

  /** Releases the compressors once everything is drained (abandon() does too). */
  close(): void {
    this.lanes?.close();
  }

  private async deliverHead(): Promise<void> {
    const job = this.queue[0]!;
    const output = await job.output;
    this.queue.shift();
    await this.options.deliver(job.tag, job.input, output);
    // Delivered: the buffer can carry another block.
    if (job.recycle && !this.abandoned && this.spares.length < this.maxSpares) this.spares.push(job.input);
  }
}
