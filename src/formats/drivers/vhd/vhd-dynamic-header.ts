/**
 * The 1024-byte dynamic disk header ("cxsparse") that dynamic and differencing VHDs keep where the footer's
 * data offset points (512 in practice). Big-endian, from the VHD specification:
 *
 *   0 cookie "cxsparse"   8 data offset (u64, unused: all ones)   16 table (BAT) offset (u64)
 *  24 header version     28 max table entries   32 block size   36 checksum   40 parent unique id (16)
 *  56 parent timestamp   60 reserved   64 parent unicode name (512, UTF-16BE)   576 8 parent locators (24 each)
 * 768 reserved (256)
 */
import { CorruptImageError } from "../../errors.js";
import { vhdChecksum } from "./vhd-footer.js";

export const VHD_DYNAMIC_HEADER_SIZE = 1024;
export const VHD_DYNAMIC_HEADER_COOKIE = Buffer.from("cxsparse", "latin1");
export const VHD_DYNAMIC_HEADER_VERSION = 0x0001_0000;
/** What Virtual PC and Hyper-V use; qemu writes nothing else. */
export const VHD_DEFAULT_BLOCK_SIZE = 2 * 2 ** 20;
/** A BAT entry meaning "block not allocated". */
export const VHD_UNALLOCATED = 0xffff_ffff;

const CHECKSUM_OFFSET = 36;

export interface VhdDynamicHeader {
  readonly tableOffset: number;
  readonly headerVersion: number;
  readonly maxTableEntries: number;
  readonly blockSize: number;
  /** The parent's file name for differencing disks (empty otherwise); only used in messages. */
  readonly parentName: string;
}

/** Bytes of the sector bitmap in front of each block: one bit per 512-byte sector, padded to a whole sector. */
export function bitmapBytesFor(blockSize: number): number {
  return Math.ceil(blockSize / 512 / 8 / 512) * 512;
}

export function parseVhdDynamicHeader(path: string, buf: Buffer, offset: number): VhdDynamicHeader {
  if (!buf.subarray(0, 8).equals(VHD_DYNAMIC_HEADER_COOKIE)) {
    throw new CorruptImageError(`${path}: no VHD dynamic disk header ("cxsparse") at offset ${offset}`);
  }
  const stored = buf.readUInt32BE(CHECKSUM_OFFSET);
  const computed = vhdChecksum(buf.subarray(0, VHD_DYNAMIC_HEADER_SIZE), CHECKSUM_OFFSET);
  if (stored !== computed) {
    throw new CorruptImageError(
      `${path}: VHD dynamic disk header has a bad checksum (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)})`,
    );
  }
  const tableOffset = buf.readBigUInt64BE(16);
  if (tableOffset > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CorruptImageError(`${path}: VHD block allocation table offset ${tableOffset} is out of range`);
  }
  const blockSize = buf.readUInt32BE(32);
  // Powers of two from one sector up; the upper bound keeps a block's sector bitmap (1/4096 of it) small.
  if (blockSize < 512 || blockSize > 256 * 2 ** 20 || (blockSize & (blockSize - 1)) !== 0) {
    throw new CorruptImageError(`${path}: VHD block size ${blockSize} is not a power of two from 512 bytes to 256 MiB`);
  }
  return {
    tableOffset: Number(tableOffset),
    headerVersion: buf.readUInt32BE(24),
    maxTableEntries: buf.readUInt32BE(28),
    blockSize,
    parentName: decodeParentName(buf.subarray(64, 576)),
  };
}

function decodeParentName(raw: Buffer): string {
  // UTF-16 big-endian, NUL-terminated; swap into a copy to decode it as little-endian.
  const swapped = Buffer.from(raw).swap16();
  const text = swapped.toString("utf16le");
  const nul = text.indexOf("\0");
  return nul < 0 ? text : text.slice(0, nul);
}

export function encodeVhdDynamicHeader(tableOffset: number, maxTableEntries: number, blockSize: number): Buffer {
  const buf = Buffer.alloc(VHD_DYNAMIC_HEADER_SIZE);
  VHD_DYNAMIC_HEADER_COOKIE.copy(buf, 0);
  buf.writeBigUInt64BE(0xffff_ffff_ffff_ffffn, 8);
  buf.writeBigUInt64BE(BigInt(tableOffset), 16);
  buf.writeUInt32BE(VHD_DYNAMIC_HEADER_VERSION, 24);
  buf.writeUInt32BE(maxTableEntries, 28);
  buf.writeUInt32BE(blockSize, 32);
  buf.writeUInt32BE(vhdChecksum(buf, CHECKSUM_OFFSET), CHECKSUM_OFFSET);
  return buf;
}
