import { availableParallelism } from "node:os";
import type { Deflate, DeflateRaw, ZstdCompress } from "node:zlib";
import { lazyZlib } from "../../util/lazy-builtins.js";

/**
 * Long-lived compressors on libuv's threadpool, one independent compressed unit per block (a zlib or raw
 * deflate stream, or a zstd frame), for formats that compress fixed-size blocks one by one (qcow2 clusters,
 * VMDK grains).
 *
 * Why not zlib's one-shot functions: each `deflateRaw(buf, cb)` builds a stream object and a fresh codec
 * context, which cost the main thread 60-80 µs per 64 KiB block, about as much as zstd's own work. A lane
 * instead keeps one stream open and writes each block with a flush mode that ends the unit (ZSTD_e_end ends
 * the frame; Z_FINISH ends the deflate stream, which `reset()` then reopens), so a block costs one threadpool
 * round trip and ~35 µs of main thread, and the codec context is reused (zstd level 1 runs ~15% faster).
 *
 * A lane handles one block at a time (the output read after a write's callback is exactly that block's);
 * several lanes keep the threadpool's threads busy. A lane may also skip incompressible data (see Lane).
 */

/** Plain data describing the codec. "deflate" is a zlib stream (RFC 1950), "deflate-raw" bare deflate (RFC 1951). */
export type CompressionCodec =
  | {
      readonly kind: "deflate" | "deflate-raw";
      readonly level: number;
      readonly windowBits?: number;
      readonly memLevel?: number;
    }
  | {
      readonly kind: "zstd";
      readonly level: number;
      /** log2 of the largest block: a smaller zstd window is faster and lighter. */
      readonly windowLog?: number;
    };

type Compressor = Deflate | DeflateRaw | ZstdCompress;
/** zlib streams pass these on to their Transform base, though the zlib option types do not list them. */
type StreamOptions = { readonly readableHighWaterMark: number };

/** Output chunks several blocks large, so a block's output rarely needs a second round trip. */
const OUTPUT_CHUNK = 256 * 1024;
/** zstd refuses windows below 1 KiB. */
const ZSTD_MIN_WINDOW_LOG = 10;

/** Threads the compressors may occupy: the threadpool's size (see compression-pool.ts), at most one per core. */
export function compressionThreads(): number {
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(poolSize, availableParallelism()));
}

/** The zstd window for blocks up to `largestBlock`: the codec's, else just large enough for one block. */
export function zstdWindowLog(codec: CompressionCodec & { kind: "zstd" }, largestBlock: number): number {
  return Math.max(ZSTD_MIN_WINDOW_LOG, codec.windowLog ?? Math.ceil(Math.log2(largestBlock)));
}

/** One long-lived stream that turns each block written into one complete unit (frame or stream). */
class UnitCompressor {
  private readonly stream: Compressor;
  /** Set for deflate, whose stream must be reopened after each block; zstd frames follow one another. */
  private readonly deflate: Deflate | DeflateRaw | undefined;
  private failure: Error | undefined;

  constructor(codec: CompressionCodec, largestBlock: number) {
    const chunkSize = Math.max(OUTPUT_CHUNK, 2 * largestBlock);
    // The readable side is drained after every block; a huge mark just means a block's output never waits.
    const stream: StreamOptions = { readableHighWaterMark: 2 ** 30 };
    const { constants, createDeflate, createDeflateRaw, createZstdCompress } = lazyZlib();
    if (codec.kind === "zstd") {
      const windowLog = zstdWindowLog(codec, largestBlock);
      this.stream = createZstdCompress({
        params: { [constants.ZSTD_c_compressionLevel]: codec.level, [constants.ZSTD_c_windowLog]: windowLog },
        flush: constants.ZSTD_e_end,
        chunkSize,
        ...stream,
      });
    } else {
      const options = {
        level: codec.level,
        windowBits: codec.windowBits,
        memLevel: codec.memLevel,
        flush: constants.Z_FINISH,
        chunkSize,
        ...stream,
      };
      this.deflate = codec.kind === "deflate" ? createDeflate(options) : createDeflateRaw(options);
      this.stream = this.deflate;
    }
    this.stream.pause();
    this.stream.on("error", (error: Error) => (this.failure ??= error));
  }

  /** Compresses one block; calls must not overlap. */
  run(block: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (this.stream.destroyed) return reject(new Error("compressor closed"));
      this.stream.write(block, (error) => {
        if (error || this.failure) return reject(error ?? this.failure);
        if (this.stream.destroyed) return reject(new Error("compressor closed"));
        // Everything the stream produced for this write, which ended its unit (frame or stream).
        const output = (this.stream.read() as Buffer | null) ?? Buffer.alloc(0);
        this.deflate?.reset();
        resolve(output);
      });
    });
  }

  close(): void {
    this.stream.destroy();
  }
}

/**
 * Already-compressed data (packages, media, archives) costs deflate as much time as anything else and gains
 * nothing. zstd's fastest level notices it several times faster, so after a block that did not shrink, a
 * lane first asks zstd; if even zstd cannot save this much, the block is returned uncompressed.
 */
const PROBE_CODEC: CompressionCodec = { kind: "zstd", level: 1 };
const PROBE_MIN_SAVING = 0.02;

class Lane {
  private readonly compressor: UnitCompressor;
  private probe: UnitCompressor | undefined;
  private previousDidNotShrink = false;
  private tail: Promise<unknown> = Promise.resolve();
  /** Blocks queued on this lane, the one compressing included. */
  queued = 0;

  constructor(
    codec: CompressionCodec,
    private readonly largestBlock: number,
    private readonly skipIncompressible: boolean,
  ) {
    this.compressor = new UnitCompressor(codec, largestBlock);
  }

  compress(block: Buffer): Promise<Buffer> {
    this.queued++;
    const result = this.tail.then(() => this.compressNow(block));
    this.tail = result.then(
      () => (this.queued--, undefined),
      () => (this.queued--, undefined),
    );
    return result;
  }

  close(): void {
    this.compressor.close();
    this.probe?.close();
  }

  private async compressNow(block: Buffer): Promise<Buffer> {
    if (this.skipIncompressible && this.previousDidNotShrink) {
      this.probe ??= new UnitCompressor(PROBE_CODEC, this.largestBlock);
      const probed = await this.probe.run(block);
      if (probed.length > block.length * (1 - PROBE_MIN_SAVING)) return NOT_COMPRESSED;
    }
    const output = await this.compressor.run(block);
    this.previousDidNotShrink = output.length >= block.length;
    return output;
  }
}

/** What `compress` returns for a block it judged incompressible (no real compressed unit is empty). */
export const NOT_COMPRESSED = Buffer.alloc(0);

export interface CompressionLanesOptions {
  /**
   * Check blocks following one that did not shrink with a fast zstd pass first, and return NOT_COMPRESSED
   * for those that cannot shrink (worth it for deflate, whose time is wasted on such data; zstd is fast there).
   */
  readonly skipIncompressible?: boolean;
  /** Lanes; default twice the compression threads, so a thread finds the next block already queued. */
  readonly lanes?: number;
}

export class CompressionLanes {
  private readonly lanes: Lane[];

  constructor(codec: CompressionCodec, largestBlock: number, options: CompressionLanesOptions = {}) {
    const count = Math.max(1, options.lanes ?? 2 * compressionThreads());
    const skip = options.skipIncompressible ?? false;
    this.lanes = Array.from({ length: count }, () => new Lane(codec, largestBlock, skip));
  }

  get count(): number {
    return this.lanes.length;
  }

  /**
   * Compresses `block` (which must stay unchanged until this resolves) into one independent unit, or returns
   * NOT_COMPRESSED when skipping incompressible blocks.
   */
  compress(block: Buffer): Promise<Buffer> {
    const lane = this.lanes.reduce((best, lane) => (lane.queued < best.queued ? lane : best));
    return lane.compress(block);
  }

  close(): void {
    for (const lane of this.lanes) lane.close();
  }
}
