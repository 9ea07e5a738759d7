/**
 * Reading the compressed grains of a streamOptimized extent. Each grain is stored as a grain marker (the grain's
 * sector in the extent, u64; the compressed byte count, u32) followed by a zlib stream (RFC 1950) and zero
 * padding to the next sector. A read covering many grains fetches them with one positional read (a stream's
 * grains lie back to back in disk order), then inflates them in parallel on the libuv threadpool.
 *
 * Hostile input is bounded: a marker's size may not exceed twice the grain size (qemu's bound; deflate never
 * grows data by more than a few bytes per 16 KiB), inflation stops at the grain size (a "zip bomb" fails), and
 * the marker must name the grain the table says it is.
 */
import { promisify } from "node:util";
import type { ZlibOptions } from "node:zlib";
import { lazyZlib } from "../../../util/lazy-builtins.js";
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LruLoadCache } from "../../io/lru-load-cache.js";
import { settleAll } from "../../engine/source-ranges.js";
import { SECTOR } from "./vmdk-sparse-header.js";

// Made on the first compressed grain (see lazy-builtins.ts).
let inflate: ((input: Buffer, options: ZlibOptions) => Promise<Buffer>) | undefined;
const inflateAsync = (input: Buffer, options: ZlibOptions) =>
  (inflate ??= promisify(lazyZlib().inflate))(input, options);

export const GRAIN_MARKER_BYTES = 12;

/** Largest span of the file fetched by one read for neighbouring grains. */
const GROUP_READ_SPAN = 8 * 2 ** 20;
/** Decompressed grains kept for reads that cover a grain in several pieces. */
const GRAIN_CACHE_BYTES = 8 * 2 ** 20;

/** The most bytes a grain's zlib stream may take: deflate never grows data by more than a few bytes per 16 KiB. */
export function maxCompressedGrainBytes(grainSize: number): number {
  return 2 * grainSize;
}

/** The part of one compressed grain a read wants. */
export interface CompressedPiece {
  /** Extent offset of the wanted bytes. */
  readonly offset: number;
  readonly length: number;
  /** Extent offset where the grain starts. */
  readonly grainOffset: number;
  /** File offset of the grain marker. */
  readonly hostOffset: number;
}

export class CompressedGrainReader {
  private readonly cache: LruLoadCache<number, Buffer>;
  private readonly maxCompressedBytes: number;

  constructor(
    private readonly file: ImageInput,
    private readonly grainSize: number,
  ) {
    this.cache = new LruLoadCache(Math.max(GRAIN_CACHE_BYTES, 4 * grainSize));
    this.maxCompressedBytes = maxCompressedGrainBytes(grainSize);
  }

  /** Copies every piece's bytes into `out`, which holds extent bytes from offset `base`. */
  async read(pieces: readonly CompressedPiece[], out: Buffer, base: number): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < pieces.length;) {
      const group = this.group(pieces, i);
      jobs.push(this.readGroup(group, out, base));
      i += group.length;
    }
    await settleAll(jobs);
  }

  clear(): void {
    this.cache.clear();
  }

  /** Pieces from `start` whose grains follow one another closely enough in the file to be read at once. */
  private group(pieces: readonly CompressedPiece[], start: number): CompressedPiece[] {
    const first = pieces[start]!;
    const group = [first];
    let last = first;
    for (let i = start + 1; i < pieces.length; i++) {
      const next = pieces[i]!;
      const gap = next.hostOffset - last.hostOffset;
      // Grains of a stream are in disk order, each well under two grains long, with at most a table between.
      if (gap <= 0 || gap > this.maxCompressedBytes + 8 * SECTOR) break;
      if (next.hostOffset + this.grainSize - first.hostOffset > GROUP_READ_SPAN) break;
      group.push(next);
      last = next;
    }
    return group;
  }

  private async readGroup(group: readonly CompressedPiece[], out: Buffer, base: number): Promise<void> {
    const first = group[0]!;
    const last = group[group.length - 1]!;
    let span: Promise<Buffer> | undefined;
    // The last grain's length is unknown until its marker is read; a typical grain fits in the guess.
    const spanEnd = Math.min(this.file.size, last.hostOffset + GRAIN_MARKER_BYTES + this.grainSize + SECTOR);
    const readSpan = () => (span ??= this.file.readExact(first.hostOffset, spanEnd - first.hostOffset));
    await Promise.all(
      group.map(async (piece) => {
        const load = async () => this.inflateGrain(piece, await readSpan(), piece.hostOffset - first.hostOffset);
        // A grain read whole (the convert pipeline's aligned chunks) will not be wanted again: no caching.
        const whole = piece.offset === piece.grainOffset && piece.length === this.grainSize;
        const grain = whole ? await load() : await this.cache.get(piece.hostOffset, this.grainSize, load);
        const from = piece.offset - piece.grainOffset;
        grain.copy(out, piece.offset - base, from, from + piece.length);
      }),
    );
  }

  /** The grain whose marker is at `at` in `span` (a copy of the file from the group's first grain). */
  private async inflateGrain(piece: CompressedPiece, span: Buffer, at: number): Promise<Buffer> {
    const where = `${this.file.path}: compressed grain at file offset ${piece.hostOffset}`;
    let marker = span.subarray(at, at + GRAIN_MARKER_BYTES);
    if (marker.length < GRAIN_MARKER_BYTES) {
      marker = await this.file.readExact(piece.hostOffset, GRAIN_MARKER_BYTES, undefined, "grain marker");
    }
    const lba = marker.readBigUInt64LE(0);
    const size = marker.readUInt32LE(8);
    if (lba !== BigInt(piece.grainOffset / SECTOR)) {
      throw new CorruptImageError(
        `${where}: its marker names sector ${lba}, but the grain table maps it to sector ${piece.grainOffset / SECTOR}`,
      );
    }
    if (size === 0 || size > this.maxCompressedBytes) {
      throw new CorruptImageError(
        `${where}: compressed size ${size} is outside 1..${this.maxCompressedBytes} (twice the grain size)`,
      );
    }
    const dataStart = at + GRAIN_MARKER_BYTES;
    const compressed =
      dataStart + size <= span.length
        ? span.subarray(dataStart, dataStart + size)
        : await this.file.readExact(piece.hostOffset + GRAIN_MARKER_BYTES, size, undefined, "compressed grain");
    return inflateGrain(compressed, this.grainSize, where);
  }
}

/**
 * Inflates one grain's zlib stream into a whole grain (a short last grain is padded with zeros); `where` names
 * the grain in errors. Inflation stops at the grain size, so a "zip bomb" fails instead of growing.
 */
export async function inflateGrain(compressed: Buffer, grainSize: number, where: string): Promise<Buffer> {
  let grain: Buffer;
  try {
    grain = await inflateAsync(compressed, {
      maxOutputLength: grainSize,
      // One output buffer for the whole grain: one threadpool round trip instead of several.
      chunkSize: grainSize + 1024,
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ERR_BUFFER_TOO_LARGE") {
      throw new CorruptImageError(`${where}: inflates to more than the grain size ${grainSize}`, { cause: e });
    }
    throw new CorruptImageError(`${where}: not a valid zlib stream: ${(e as Error).message}`, { cause: e });
  }
  if (grain.length === grainSize) return grain;
  // The last grain of a disk whose size is not a multiple of the grain is stored short (qemu, VMDKstream).
  const full = Buffer.alloc(grainSize);
  grain.copy(full);
  return full;
}
