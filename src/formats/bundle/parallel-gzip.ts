/**
 * gzip on every core, in a form every gunzip reads: the stream is cut into independent chunks, each compressed
 * on libuv's threadpool as a complete gzip member, and the members are emitted in order. RFC 1952 allows a file
 * to be a series of members, and `gzip -d`, pigz, Python's gzip module (hence tarfile and euca2ools) and Node's
 * zlib all decode it as the concatenation. A few bytes of member framing per megabytes of data is the cost.
 */
import { availableParallelism } from "node:os";
import { promisify } from "node:util";
import { gzip as gzipCallback } from "node:zlib";
import { orderedParallel } from "./ordered-parallel.js";

const gzipAsync = promisify(gzipCallback);

/** gzip's and pigz's default: what euca2ools gets when it runs either. */
export const DEFAULT_GZIP_LEVEL = 6;

export interface GzippedChunk {
  /** The chunk as given, for whoever must still see the uncompressed bytes (the tar digest). */
  readonly plain: Buffer;
  readonly member: Buffer;
}

/**
 * Compresses each chunk of `chunks` as one gzip member, up to one per core (plus one, to keep the pool fed while
 * the consumer works) at a time, yielding them in order. Chunks of identical bytes are common in disks (runs of
 * zeros): the last few members are remembered by content so such a chunk is compressed once.
 */
export async function* gzipMembers(
  chunks: AsyncIterable<Buffer>,
  level = DEFAULT_GZIP_LEVEL,
  concurrency = availableParallelism() + 1,
): AsyncGenerator<GzippedChunk> {
  let zeroMember: { length: number; member: Promise<Buffer> } | undefined;
  // Output in 1 MiB buffers, a member's worth in one or a few: with zlib's default 16 KiB, a member took dozens
  // of round trips between the pool and the main thread, which is busy digesting, and the cores sat half idle.
  const options = { level, chunkSize: MEMBER_OUTPUT_CHUNK };
  const compress = (plain: Buffer): Promise<GzippedChunk> => {
    // Zero chunks (the holes of a disk) are the one repeat worth spotting: checked with one scan, deflated once.
    if (plain.length >= 65536 && isAllZero(plain)) {
      if (zeroMember?.length !== plain.length) {
        zeroMember = { length: plain.length, member: gzipAsync(plain, options) };
      }
      return zeroMember.member.then((member) => ({ plain, member }));
    }
    return gzipAsync(plain, options).then((member) => ({ plain, member }));
  };
  yield* orderedParallel(chunks, compress, concurrency);
}

const MEMBER_OUTPUT_CHUNK = 2 ** 20;
const ZEROS = Buffer.alloc(65536);

function isAllZero(data: Buffer): boolean {
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const end = Math.min(data.length, at + ZEROS.length);
    if (ZEROS.compare(data, at, end, 0, end - at) !== 0) return false;
  }
  return true;
}
