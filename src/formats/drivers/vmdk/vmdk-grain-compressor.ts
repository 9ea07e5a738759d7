/**
 * Compresses streamOptimized grains on all cores and hands them back strictly in disk order, with a bounded
 * number in flight so memory stays flat for any disk size.
 *
 * VMDK grains are zlib streams (RFC 1950: header, deflate data, Adler-32), which the shared worker pool
 * (engine/compression-pool, built for qcow2's raw deflate and zstd) does not produce. Each grain is therefore
 * compressed with node:zlib's asynchronous deflate, which runs on the libuv threadpool: at deflate's cost per
 * 64 KiB grain (about a millisecond) the per-call overhead of the asynchronous API is a few percent.
 */
import { availableParallelism } from "node:os";
import { promisify } from "node:util";
import zlib from "node:zlib";

const deflateAsync = promisify<Buffer, zlib.ZlibOptions, Buffer>(zlib.deflate);

interface Job {
  readonly grain: number;
  readonly output: Promise<Buffer>;
}

export class GrainCompressor {
  private readonly queue: Job[] = [];
  private readonly maxInFlight: number;
  private readonly options: zlib.ZlibOptions;
  private abandoned = false;

  constructor(
    level: number,
    grainSize: number,
    /** Receives each compressed grain, one at a time, in submission order. */
    private readonly deliver: (grain: number, compressed: Buffer) => Promise<void>,
  ) {
    // Enough grains to keep every threadpool thread busy while finished ones wait for their turn.
    this.maxInFlight = 4 * Math.max(2, availableParallelism());
    // One output chunk per grain: node:zlib returns to the main thread once per chunk, and each trip costs.
    this.options = { level, chunkSize: grainSize + 1024 };
  }

  /**
   * Starts compressing `data` (kept until delivered: the caller must not reuse it) and delivers what has
   * finished at the head of the line. Resolves once there is room for another grain; calls must not overlap.
   */
  async submit(grain: number, data: Buffer): Promise<void> {
    if (this.abandoned) throw new Error("grain compressor used after it was abandoned");
    const output = deflateAsync(data, this.options);
    // A failure is reported when the grain reaches the head of the line; until then it must not be unhandled.
    output.catch(() => undefined);
    this.queue.push({ grain, output });
    while (this.queue.length >= this.maxInFlight) await this.deliverHead();
  }

  /** Waits for every submitted grain and delivers them all. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.deliverHead();
  }

  /** Forgets queued grains after an error; compressions already running finish and are discarded. */
  abandon(): void {
    this.abandoned = true;
    this.queue.length = 0;
  }

  private async deliverHead(): Promise<void> {
    const job = this.queue[0]!;
    const compressed = await job.output;
    this.queue.shift();
    await this.deliver(job.grain, compressed);
  }
}
