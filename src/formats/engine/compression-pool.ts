import { availableParallelism } from "node:os";
import { CompressionLanes, compressionThreads, zstdWindowLog, type CompressionCodec } from "./compression-lanes.js";
import { nativeZstdBatch, type ZstdBatchAddon } from "./native-zstd-batch.js";
import { isAllZero } from "./zero-runs.js";

export { NOT_COMPRESSED, type CompressionCodec } from "./compression-lanes.js";

/**
 * Compresses many independent blocks concurrently on libuv's threadpool while handing the results back
 * strictly in submission order, with a bounded number of blocks in flight so memory stays flat however large
 * the image is.
 *
 * Give it a `codec` (preferred: long-lived compressors, see compression-lanes.ts, about 35 µs of main thread
 * per block) or any asynchronous `compress` function (node:zlib's one-shot functions cost 60-80 µs of main
 * thread per 64 KiB block, as much as zstd's own work). A zstd codec compresses whole batches of blocks per
 * threadpool task instead when the native batch compressor is built (native-zstd-batch.ts): same frames,
 * 1/8 of the round trips for 64 KiB blocks.
 *
 * libuv's threadpool is sized once, from UV_THREADPOOL_SIZE, the first time anything uses it. Its default of
 * 4 threads would leave most cores of a large machine idle and overcrowd a small one, so this module sets one
 * thread per core while it is being imported, which in a library user's process is before any image file is
 * opened (bin/chromogenic.js does the same for the CLI, first thing). An explicit UV_THREADPOOL_SIZE is left
 * alone. File reads and writes share the pool with compression: measured on two cores, 2 threads compressed as
 * fast as 4 or 6, and an uncompressed conversion ran 0.30 s against 0.37 s with 4 (threads preempting each
 * other in the kernel's copies).
 */
const cores = availableParallelism();
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, cores));

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

/**
 * Input bytes per native batch (8 clusters of 64 KiB): large enough that round trips stop mattering, small
 * enough to keep both cores busy to the end (measured on the benchmark disk: 256 KiB 1.22 s, 512 KiB 1.19 s,
 * 1 MiB 1.21 s, 2 MiB 1.25 s).
 */
const BATCH_BYTES = 512 * 1024;

interface BlockJob<Tag> {
  readonly kind: "block";
  readonly tag: Tag;
  readonly input: Buffer;
  readonly output: Promise<Buffer>;
  /** `input` is the pool's own copy (submitCopy), reused once delivered. */
  readonly recycle: boolean;
  settled: boolean;
}

/** A native batch: blocks `firstTag`, `firstTag + 1`, … of `input`; block i's frame at i × stride of `output`. */
interface BatchJob {
  readonly kind: "batch";
  readonly firstTag: number;
  /** The submitter's memory, not a copy: it is told through `hold` when the pool is done with it. */
  readonly input: Buffer;
  readonly output: Buffer;
  readonly sizes: Int32Array;
  readonly done: Promise<void>;
  readonly hold: Hold;
  settled: boolean;
}

type PendingJob<Tag> = BlockJob<Tag> | BatchJob;

/** The submitter's side of a batch holding its memory. */
interface Hold {
  readonly released: Promise<void>;
  readonly release: () => void;
  readonly fail: (error: unknown) => void;
}

function newHold(): Hold {
  let release!: () => void;
  let fail!: (error: unknown) => void;
  const released = new Promise<void>((resolve, reject) => ((release = resolve), (fail = reject)));
  // Failures surface through the pool (drain, the next submit) and through the hold; none is unhandled.
  released.catch(() => undefined);
  return { released, release, fail };
}

/** The native batch path, when this pool's codec can use it. */
interface BatchMode {
  readonly addon: ZstdBatchAddon;
  readonly level: number;
  readonly windowLog: number;
  /** Output bytes reserved per block (zstd's bound for the block size). */
  readonly stride: number;
  /** Input bytes per batch: whole blocks. */
  readonly batchBytes: number;
  readonly spareOutputs: Buffer[];
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
  /**
   * `deliver` is done with `output` once its promise resolves (it copied or wrote the bytes), so the pool may
   * reuse that memory for later results. Default false: outputs are never reused.
   */
  readonly deliverCopiesOutput?: boolean;
  /** Most blocks compressing or waiting for delivery at once. */
  readonly maxInFlight?: number;
}

export class CompressionPool<Tag> {
  private readonly queue: PendingJob<Tag>[] = [];
  private readonly maxInFlight: number;
  private readonly compress: (input: Buffer) => Promise<Buffer>;
  private lanes: CompressionLanes | undefined;
  private readonly blockSize: number;
  /** Buffers of `blockSize` bytes that carried a block already delivered. */
  private readonly spares: Buffer[] = [];
  private readonly maxSpares: number;
  private readonly batch: BatchMode | undefined;
  private abandoned = false;
  /** The first failure (a compression or a delivery): every later call reports it. */
  private failure: unknown;
  /** The delivery run in progress (see pump). */
  private pumping: Promise<void> | undefined;

  constructor(private readonly options: CompressionPoolOptions<Tag>) {
    if ((options.codec === undefined) === (options.compress === undefined)) {
      throw new Error("CompressionPool needs exactly one of codec and compress");
    }
    const blockSize = options.blockSize ?? 64 * 1024;
    this.blockSize = blockSize;
    this.maxSpares = Math.min(MAX_SPARES, Math.max(2, Math.floor(SPARE_BYTES / blockSize)));
    if (options.codec) {
      const codec = options.codec;
      const laneOptions = { skipIncompressible: options.skipIncompressible };
      this.batch = batchMode(codec, blockSize, options.skipIncompressible ?? false);
      // In batch mode only a per-block submit() needs the lanes: they are opened on first use.
      if (!this.batch) this.lanes = new CompressionLanes(codec, blockSize, laneOptions);
      this.compress = (input) => (this.lanes ??= new CompressionLanes(codec, blockSize, laneOptions)).compress(input);
      if (this.batch) {
        // Batches: enough queued behind each thread that neither idles while results wait their turn (measured
        // on 2 cores: 5 in flight 1.19 s, 8 1.14 s, 12 1.13 s for the benchmark disk), capped by bytes.
        const byMemory = Math.max(2, Math.floor(MAX_BYTES_IN_FLIGHT / this.batch.batchBytes));
        this.maxInFlight = Math.max(1, options.maxInFlight ?? Math.min(6 * compressionThreads(), byMemory));
      } else {
        // Each lane compressing one block with two more waiting, so no thread idles between blocks or behind a
        // slow block at the head of the line; large blocks on many cores are capped by bytes instead.
        const byMemory = Math.max(4, Math.floor(MAX_BYTES_IN_FLIGHT / blockSize));
        this.maxInFlight = Math.max(1, options.maxInFlight ?? Math.min(3 * this.lanes!.count, byMemory));
      }
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

  /**
   * Compresses every unit of `data` (whole blocks, tagged `firstTag` on) that is not all zeros; units of zeros
   * are skipped, never delivered. Resolves once there is room for more. Other data than `borrowed` is the
   * pool's from now on. `borrowed` data is the caller's: the stream lanes compress copies of it, while the
   * native batches read it where it is and return a DataHold whose `released` resolves once the pool is done
   * with it (every block delivered, or the pool abandoned and the batch's task finished).
   */
  async submitUnits(
    this: CompressionPool<number>,
    firstTag: number,
    data: Buffer,
    borrowed: boolean,
  ): Promise<{ readonly released: Promise<void> } | void> {
    const size = this.blockSize;
    if (this.batch) {
      const held: Promise<void>[] = [];
      for (let start = 0; start < data.length; start += this.batch.batchBytes) {
        const part = data.subarray(start, start + this.batch.batchBytes);
        held.push((await this.enqueueBatch(firstTag + start / size, part)).released);
      }
      if (!borrowed || held.length === 0) return;
      return { released: held.length === 1 ? held[0]! : Promise.all(held).then(() => undefined) };
    }
    for (let i = 0; i < data.length / size; i++) {
      const unit = data.subarray(i * size, (i + 1) * size);
      if (isAllZero(unit)) continue;
      if (borrowed) await this.submitCopy(firstTag + i, unit);
      else await this.submit(firstTag + i, unit);
    }
  }

  /** Waits for every submitted block and delivers them all. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await this.headSettled();
      await this.pump();
    }
    this.throwIfFailed();
  }

  /** Forgets queued blocks after an error; compressions already running finish and are discarded. */
  abandon(): void {
    this.abandoned = true;
    for (const job of this.queue.splice(0)) {
      // The batch's task may still be reading the submitter's memory: let go of it only once the task is over.
      if (job.kind === "batch") void job.done.then(job.hold.release, job.hold.release);
    }
    this.lanes?.close();
  }

  /** Releases the compressors once everything is drained (abandon() does too). */
  close(): void {
    this.lanes?.close();
  }

  private async enqueue(tag: Tag, input: Buffer, recycle: boolean): Promise<void> {
    this.throwIfUnusable();
    const output = this.compress(input);
    const job: BlockJob<Tag> = { kind: "block", tag, input, output, recycle, settled: false };
    output.then(
      () => this.settle(job),
      () => this.settle(job),
    );
    await this.admit(job);
  }

  /** Starts one batch; resolves once there is room for more, with the hold on `input`. */
  private async enqueueBatch(firstTag: number, input: Buffer): Promise<{ readonly released: Promise<void> }> {
    this.throwIfUnusable();
    const batch = this.batch!;
    const blocks = Math.ceil(input.length / this.blockSize);
    const reuseOutput = input.length === batch.batchBytes && this.options.deliverCopiesOutput === true;
    const output =
      (reuseOutput ? batch.spareOutputs.pop() : undefined) ?? Buffer.allocUnsafeSlow(blocks * batch.stride);
    const sizes = new Int32Array(blocks);
    const done = batch.addon.compressBatch(input, this.blockSize, batch.level, batch.windowLog, output, sizes);
    const hold = newHold();
    const job: BatchJob = { kind: "batch", firstTag, input, output, sizes, done, hold, settled: false };
    done.then(
      () => this.settle(job as PendingJob<Tag>),
      () => this.settle(job as PendingJob<Tag>),
    );
    await this.admit(job as PendingJob<Tag>);
    return { released: hold.released };
  }

  /** Queues a started job and waits while the line is full. Delivery runs on its own (see pump). */
  private async admit(job: PendingJob<Tag>): Promise<void> {
    this.queue.push(job);
    while (this.queue.length >= this.maxInFlight) {
      await this.headSettled();
      await this.pump();
    }
    this.throwIfFailed();
  }

  /** A job finished compressing: if it heads the line, deliver it (and whatever finished behind it) now. */
  private settle(job: PendingJob<Tag>): void {
    job.settled = true;
    if (this.queue[0] === job) this.pump().catch(() => undefined); // recorded in `failure`
  }

  private headSettled(): Promise<unknown> {
    const head = this.queue[0];
    if (!head) return Promise.resolve();
    return (head.kind === "batch" ? head.done : head.output).catch(() => undefined);
  }

  /**
   * Delivers finished jobs from the head of the line, one at a time, in order; the only caller of deliver().
   * Runs as soon as results arrive, so a submitter waiting for a batch's hold never waits for its own next
   * submit. Returns the run in progress, if any.
   */
  private pump(): Promise<void> {
    if (!this.pumping) {
      const run = this.deliverFinished().finally(() => {
        if (this.pumping === run) this.pumping = undefined;
      });
      this.pumping = run;
    }
    return this.pumping;
  }

  private async deliverFinished(): Promise<void> {
    try {
      while (!this.abandoned && this.queue[0]?.settled) await this.deliverHead();
    } catch (e) {
      this.failure ??= e;
      throw e;
    }
  }

  private async deliverHead(): Promise<void> {
    const job = this.queue[0]!;
    if (job.kind === "batch") return this.deliverBatch(job);
    const output = await job.output;
    this.queue.shift();
    await this.options.deliver(job.tag, job.input, output);
    // Delivered: the buffer can carry another block.
    if (job.recycle && !this.abandoned && this.spares.length < this.maxSpares) this.spares.push(job.input);
  }

  private async deliverBatch(job: BatchJob): Promise<void> {
    try {
      await job.done;
      this.queue.shift();
      const batch = this.batch!;
      const size = this.blockSize;
      const deliver = this.options.deliver as (tag: number, input: Buffer, output: Buffer) => Promise<void>;
      for (let i = 0; i < job.sizes.length && !this.abandoned; i++) {
        const length = job.sizes[i]!;
        if (length === 0) continue; // all zeros: not stored
        const at = i * batch.stride;
        const input = job.input.subarray(i * size, (i + 1) * size);
        await deliver(job.firstTag + i, input, job.output.subarray(at, at + length));
      }
      job.hold.release();
      const reusable = this.options.deliverCopiesOutput === true && job.input.length === batch.batchBytes;
      if (reusable && !this.abandoned && batch.spareOutputs.length < this.maxInFlight)
        batch.spareOutputs.push(job.output);
    } catch (e) {
      job.hold.fail(e);
      throw e;
    }
  }

  private throwIfUnusable(): void {
    if (this.abandoned) throw new Error("compression pool used after it was abandoned");
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/**
 * The native batch path for a zstd codec, when the addon is built. Not for pools that skip incompressible
 * blocks: the batch compresses every block (zstd passes incompressible data through quickly anyway).
 */
function batchMode(codec: CompressionCodec, blockSize: number, skipIncompressible: boolean): BatchMode | undefined {
  if (codec.kind !== "zstd" || skipIncompressible) return undefined;
  const addon = nativeZstdBatch();
  if (!addon) return undefined;
  return {
    addon,
    level: codec.level,
    windowLog: zstdWindowLog(codec, blockSize),
    stride: addon.compressBound(blockSize),
    batchBytes: Math.max(1, Math.floor(BATCH_BYTES / blockSize)) * blockSize,
    spareOutputs: [],
  };
}
