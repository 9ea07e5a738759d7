/**
 * Where a zstd frame ends, found by walking its headers without decompressing (RFC 8878, section 3.1.1): the
 * frame header's size follows from its descriptor byte, each block's 3-byte header gives its size, the last
 * block says so, and a checksum of 4 bytes may follow. The kernel's decompressor stops at the end of a frame
 * and unpacks whatever follows as more of the initramfs (another cpio archive, another compressed part), so
 * a reader that wants to see what the kernel sees must know where that is.
 */
import { CorruptImageError } from "../../../formats/errors.js";
import type { BoundedFile } from "../bounded-file.js";

const MAGIC = 0xfd2fb528;
const BLOCK_HEADER = 3;
/** A block is at most 128 KiB; a frame of more than this many blocks is not an initramfs. */
const MAX_BLOCKS = 2 ** 20;

async function bytesAt(file: BoundedFile, at: number, length: number, where: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = at + length <= file.size ? await file.handle.read(buf, 0, length, at) : { bytesRead: 0 };
  if (bytesRead < length) throw new CorruptImageError(`${file.name}: the zstd frame ${where} ends early`);
  return buf;
}

/** The offset just after the zstd frame starting at `start` (its magic checked by the caller or here). */
export async function zstdFrameEnd(file: BoundedFile, start: number): Promise<number> {
  const where = `from byte ${start}`;
  const head = await bytesAt(file, start, 5, where);
  if (head.readUInt32LE(0) !== MAGIC) throw new CorruptImageError(`${file.name}: no zstd frame at byte ${start}`);
  const descriptor = head[4]!;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const checksum = (descriptor >> 2) & 1;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
  const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  let at = start + 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
  for (let blocks = 0; ; blocks++) {
    if (blocks > MAX_BLOCKS) throw new CorruptImageError(`${file.name}: the zstd frame ${where} has too many blocks`);
    const b = await bytesAt(file, at, BLOCK_HEADER, where);
    const header = b[0]! | (b[1]! << 8) | (b[2]! << 16);
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) throw new CorruptImageError(`${file.name}: the zstd frame ${where} has a reserved block type`);
    at += BLOCK_HEADER + (type === 1 ? 1 : size);
    if (at > file.size) throw new CorruptImageError(`${file.name}: the zstd frame ${where} ends early`);
    if (last) break;
  }
  at += checksum ? 4 : 0;
  if (at > file.size) throw new CorruptImageError(`${file.name}: the zstd frame ${where} ends early`);
  return at;
}

/** Whether `head` starts a zstd frame. */
export const isZstdFrame = (head: Buffer) => head.length >= 4 && head.readUInt32LE(0) === MAGIC;

/** The largest block a frame with a 128 KiB window may hold (RFC 8878: min(window, 128 KiB)). */
const MAX_RAW_BLOCK = 128 * 1024;

/**
 * `data` as one zstd frame of raw (stored) blocks: valid zstd that needs no compressor. Placed right after an
 * image's zstd part, the kernel unpacks it as one more compressed part, and a tool that pipes the rest of the
 * image through `zstd -d` (Debian's unmkinitramfs, lsinitramfs) reads one stream of frames instead of failing
 * on bytes that are not zstd.
 */
export function zstdStoredFrame(data: Buffer): Buffer {
  // No content size, no checksum, no dictionary; a 128 KiB window (exponent 17 - 10, mantissa 0).
  const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3]);
  const parts: Buffer[] = [header];
  let at = 0;
  do {
    const size = Math.min(MAX_RAW_BLOCK, data.length - at);
    const last = at + size === data.length ? 1 : 0;
    const block = last | (size << 3);
    parts.push(Buffer.from([block & 0xff, (block >> 8) & 0xff, (block >> 16) & 0xff]), data.subarray(at, at + size));
    at += size;
  } while (at < data.length);
  return Buffer.concat(parts);
}
