/**
 * gzip on every core, as one gzip member (pigz's method): the stream is cut into chunks, each deflated on
 * libuv's threadpool as raw deflate ending in a sync flush (byte-aligned, not final), primed with the last
 * 32 KiB of the chunk before it as its dictionary so matches reach across the cut as a serial gzip's would. The
 * pieces, emitted in order after a gzip header, form one deflate stream, closed by an empty final block and the
 * trailer (the CRC-32 of the whole, combined chunk by chunk, and the length).
 *
 * One member, not a series of members (which RFC 1952 allows): Python's tarfile in stream mode ('r|gz', what
 * OpenStack's ec2-api unpacks a registered bundle with) stops at the end of the first member.
 */
import { availableParallelism } from "node:os";
import { promisify } from "node:util";
import { constants, crc32, deflateRaw as deflateRawCallback } from "node:zlib";
import { orderedParallel } from "./ordered-parallel.js";

const deflateRawAsync = promisify(deflateRawCallback);

/** gzip's and pigz's default: what euca2ools gets when it runs either. */
export const DEFAULT_GZIP_LEVEL = 6;

/** deflate's window: the most a back-reference reaches, so the most of the previous chunk worth priming with. */
const WINDOW = 32 * 1024;

/** ID1 ID2, deflate, no flags, no mtime (reproducible), no extra flags, OS unknown (RFC 1952 §2.3). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);

/** An empty final block with fixed Huffman codes: BFINAL=1, BTYPE=01, end-of-block — what ends the stream. */
const FINAL_EMPTY_BLOCK = Buffer.from([0x03, 0x00]);

export interface GzippedChunk {
  /** The chunk as given, for whoever must still see the uncompressed bytes (the tar digest); empty for framing. */
  readonly plain: Buffer;
  /** The compressed bytes that follow the previous piece's. */
  readonly compressed: Buffer;
}

/**
 * Compresses `chunks` as one gzip stream, up to one chunk per core (plus one, to keep the pool fed while the
 * consumer works) at a time, yielding the pieces in order: the header, each chunk's deflate, the trailer.
 * Runs of zero chunks (a disk's holes) after a zero chunk have one identical deflate, computed once.
 */
export async function* gzipParallel(
  chunks: AsyncIterable<Buffer>,
  level = DEFAULT_GZIP_LEVEL,
  concurrency = availableParallelism() + 1,
): AsyncGenerator<GzippedChunk> {
  yield { plain: Buffer.alloc(0), compressed: GZIP_HEADER };
  let crc = 0;
  let length = 0;
  let previousTail: Buffer | undefined;
  let previousZero = false;
  let zeroAfterZero: { length: number; deflated: Promise<Buffer> } | undefined;
  const compress = (plain: Buffer): Promise<GzippedChunk> => {
    const zero = plain.length >= WINDOW && isAllZero(plain);
    const options = {
      level,
      chunkSize: OUTPUT_CHUNK,
      finishFlush: constants.Z_SYNC_FLUSH,
      ...(previousTail ? { dictionary: previousTail } : {}),
    };
    let deflated: Promise<Buffer>;
    if (zero && previousZero) {
      if (zeroAfterZero?.length !== plain.length) {
        zeroAfterZero = { length: plain.length, deflated: deflateRawAsync(plain, options) };
      }
      deflated = zeroAfterZero.deflated;
    } else {
      deflated = deflateRawAsync(plain, options);
    }
    // The next chunk's dictionary is this one's end (copied: the caller may reuse the buffer).
    previousTail = Buffer.from(plain.subarray(Math.max(0, plain.length - WINDOW)));
    previousZero = zero;
    return deflated.then((compressed) => ({ plain, compressed }));
  };
  for await (const piece of orderedParallel(chunks, compress, concurrency)) {
    crc = crc32(piece.plain, crc);
    length += piece.plain.length;
    yield piece;
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(length % 2 ** 32, 4);
  yield { plain: Buffer.alloc(0), compressed: Buffer.concat([FINAL_EMPTY_BLOCK, trailer]) };
}

/**
 * Output in 1 MiB buffers, a chunk's worth in one or a few: with zlib's default 16 KiB, a chunk took dozens of
 * round trips between the pool and the main thread, which is busy digesting, and the cores sat half idle.
 */
const OUTPUT_CHUNK = 2 ** 20;
const ZEROS = Buffer.alloc(65536);

function isAllZero(data: Buffer): boolean {
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const end = Math.min(data.length, at + ZEROS.length);
    if (ZEROS.compare(data, at, end, 0, end - at) !== 0) return false;
  }
  return true;
}
