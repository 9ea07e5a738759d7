/**
 * Decompression of one qcow2 compressed cluster. qemu writes each cluster as a raw deflate stream (window
 * bits 12, no zlib header) or as a zstd frame, and records its length only to 512-byte sector precision: the
 * bytes we hand over may carry trailing padding or the start of the next compressed cluster. Output is capped
 * at the cluster size, so a crafted stream cannot expand beyond it (a "bomb" fails instead). The async zlib
 * calls run on the libuv threadpool, so many clusters decompress in parallel. Whole zlib clusters go to the
 * native batch inflater when it is built (inflateClustersInto): the same checks, in place, a batch per task.
 */
import { promisify } from "node:util";
import type { ZlibOptions, ZstdOptions } from "node:zlib";
import { CorruptImageError } from "../../errors.js";
import { settleAll } from "../../engine/source-ranges.js";
import {
  INFLATE_MORE_THAN_ROOM,
  INFLATE_NOT_DEFLATE,
  INFLATE_TRUNCATED,
  type InflateBatchAddon,
} from "../../engine/native-inflate-batch.js";
import { lazyZlib } from "../../../util/lazy-builtins.js";
import type { Qcow2Compression } from "./qcow2-header.js";

// Made for the first compressed cluster: most images have none, and node:zlib loads only then (lazy-builtins.ts).
let inflateRawOnce: ((input: Buffer, options: ZlibOptions) => Promise<Buffer>) | undefined;
let zstdDecompressOnce: ((input: Buffer, options: ZstdOptions) => Promise<Buffer>) | undefined;
const inflateRaw = (input: Buffer, options: ZlibOptions) =>
  (inflateRawOnce ??= promisify(lazyZlib().inflateRaw))(input, options);
const zstdDecompress = (input: Buffer, options: ZstdOptions) =>
  (zstdDecompressOnce ??= promisify(lazyZlib().zstdDecompress))(input, options);

/**
 * Inflates `input` into exactly `clusterSize` bytes. `where` names the cluster in error messages
 * ("image.qcow2: compressed cluster at guest offset …").
 */
export async function decompressCluster(
  compression: Qcow2Compression,
  input: Buffer,
  clusterSize: number,
  where: string,
): Promise<Buffer> {
  const output =
    compression === "zlib"
      ? await inflateDeflate(input, clusterSize, where)
      : await inflateZstd(input, clusterSize, where);
  if (output.length !== clusterSize) throw wrongSize(where, output.length, clusterSize);
  return output;
}

/** A zlib cluster inflated in place by inflateClustersInto. */
export interface ClusterInPlace {
  /** Where its deflate stream lies in the span. */
  readonly start: number;
  readonly length: number;
  /** Where its cluster-size bytes go in the output. */
  readonly outOffset: number;
  /** Names it in messages (made only for a cluster that fails). */
  readonly where: () => string;
}

/**
 * zlib clusters per threadpool task: a 4 MiB read of 64 KiB clusters is 4 tasks, so both threads work on it
 * while its round trips stay few (one per cluster was most of the main thread's time per cluster).
 */
const CLUSTERS_PER_TASK = 16;

/**
 * Inflates zlib clusters whose streams lie in `span` straight into `out` with the native batch inflater:
 * the same checks as decompressCluster, with no buffer allocated per cluster. Settles only once every batch
 * has finished, so that neither buffer is in use afterwards; then throws the first cluster's error, if any.
 */
export async function inflateClustersInto(
  addon: InflateBatchAddon,
  span: Buffer,
  clusters: readonly ClusterInPlace[],
  out: Buffer,
  clusterSize: number,
): Promise<void> {
  const batches: Promise<void>[] = [];
  for (let first = 0; first < clusters.length; first += CLUSTERS_PER_TASK) {
    const batch = clusters.slice(first, first + CLUSTERS_PER_TASK);
    const plan = new Float64Array(4 * batch.length);
    batch.forEach((c, i) => plan.set([c.start, c.length, c.outOffset, clusterSize], 4 * i));
    const results = new Int32Array(batch.length);
    batches.push(
      addon.inflateBatch(span, plan, out, results).then((message) => {
        results.forEach((result, i) => {
          if (result === clusterSize) return;
          const where = batch[i]!.where();
          if (result === INFLATE_MORE_THAN_ROOM) throw tooLarge(where, clusterSize);
          if (result === INFLATE_NOT_DEFLATE) throw notValid(where, "deflate", message ?? "invalid data");
          if (result === INFLATE_TRUNCATED) throw notValid(where, "deflate", "unexpected end of file");
          throw wrongSize(where, result, clusterSize);
        });
      }),
    );
  }
  await settleAll(batches);
}

async function inflateDeflate(input: Buffer, clusterSize: number, where: string): Promise<Buffer> {
  try {
    // Trailing bytes after the end of the deflate stream are ignored by zlib, as they must be here.
    return await inflateRaw(input, { maxOutputLength: clusterSize, chunkSize: outputChunk(clusterSize) });
  } catch (e) {
    throw decompressionError(e, clusterSize, where, "deflate");
  }
}

async function inflateZstd(input: Buffer, clusterSize: number, where: string): Promise<Buffer> {
  // zstd, unlike deflate, treats bytes after a frame as the start of another frame and fails on garbage, so
  // the frames are delimited first. qemu writes one frame; like qemu we accept several until the cluster is full.
  const parts: Buffer[] = [];
  let produced = 0;
  let at = 0;
  while (produced < clusterSize) {
    const frameLength = zstdFrameLength(input, at);
    if (frameLength < 0) {
      throw new CorruptImageError(
        `${where} holds ${produced} bytes of zstd data, short of the cluster size ${clusterSize} (no further valid frame)`,
      );
    }
    const frame = input.subarray(at, at + frameLength);
    at += frameLength;
    let part: Buffer;
    try {
      const room = clusterSize - produced;
      part = await zstdDecompress(frame, { maxOutputLength: room, chunkSize: outputChunk(room) });
    } catch (e) {
      throw decompressionError(e, clusterSize, where, "zstd");
    }
    parts.push(part);
    produced += part.length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, produced);
}

/**
 * Output buffer size for one decompression call. Node's default (16 KiB) makes a 64 KiB cluster take several
 * threadpool round trips; one buffer a little larger than the whole output lets zlib finish, and notice the
 * end of the stream, in a single pass (several times faster per cluster).
 */
function outputChunk(expected: number): number {
  return expected + 1024;
}

function decompressionError(e: unknown, clusterSize: number, where: string, kind: string): CorruptImageError {
  const code = (e as { code?: string }).code;
  if (code === "ERR_BUFFER_TOO_LARGE") return tooLarge(where, clusterSize, e);
  return notValid(where, kind, (e as Error).message, e);
}

function tooLarge(where: string, clusterSize: number, cause?: unknown): CorruptImageError {
  return new CorruptImageError(`${where} decompresses to more than the cluster size ${clusterSize}`, causedBy(cause));
}

function wrongSize(where: string, produced: number, clusterSize: number): CorruptImageError {
  return new CorruptImageError(`${where} decompresses to ${produced} bytes instead of the cluster size ${clusterSize}`);
}

function notValid(where: string, kind: string, message: string, cause?: unknown): CorruptImageError {
  return new CorruptImageError(`${where} is not valid ${kind} data: ${message}`, causedBy(cause));
}

function causedBy(cause: unknown): { cause: unknown } | undefined {
  return cause === undefined ? undefined : { cause };
}

const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames carry magic 0x184D2A50..0x184D2A5F and a 4-byte length. */
const ZSTD_SKIPPABLE_MASK = 0xfffffff0;
const ZSTD_SKIPPABLE_MAGIC = 0x184d2a50;

/**
 * The byte length of the zstd frame starting at `at` in `buf` (RFC 8878 §3.1), found by walking its block
 * headers without decoding; -1 if no complete frame starts there.
 */
export function zstdFrameLength(buf: Buffer, at: number): number {
  if (at + 4 > buf.length) return -1;
  const magic = buf.readUInt32LE(at);
  if ((magic & ZSTD_SKIPPABLE_MASK) >>> 0 === ZSTD_SKIPPABLE_MAGIC) {
    if (at + 8 > buf.length) return -1;
    const length = 8 + buf.readUInt32LE(at + 4);
    return at + length <= buf.length ? length : -1;
  }
  if (magic !== ZSTD_MAGIC) return -1;
  let pos = at + 4;
  if (pos >= buf.length) return -1;
  const descriptor = buf[pos]!;
  pos += 1;
  const contentSizeFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const hasChecksum = (descriptor >> 2) & 1;
  const dictionaryIdFlag = descriptor & 3;
  if (descriptor & 0x08) return -1; // reserved bit
  pos += singleSegment ? 0 : 1; // window descriptor
  pos += [0, 1, 2, 4][dictionaryIdFlag]!;
  pos += contentSizeFlag === 0 ? singleSegment : [0, 2, 4, 8][contentSizeFlag]!;
  for (;;) {
    if (pos + 3 > buf.length) return -1;
    const blockHeader = buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16);
    pos += 3;
    const last = blockHeader & 1;
    const type = (blockHeader >> 1) & 3;
    const size = blockHeader >>> 3;
    if (type === 3) return -1; // reserved block type
    pos += type === 1 ? 1 : size; // an RLE block stores its one byte once
    if (pos > buf.length) return -1;
    if (last) break;
  }
  pos += hasChecksum ? 4 : 0;
  return pos <= buf.length ? pos - at : -1;
}
