/**
 * The VHD hard disk footer: the 512-byte record every VHD carries at the end of the file (and, for dynamic
 * and differencing disks, as a copy at offset 0). All fields are big-endian. Layout from Microsoft's
 * "Virtual Hard Disk Image Format Specification" (2006):
 *
 *   0 cookie "conectix"     8 features      12 format version   16 data offset (u64)   24 timestamp
 *  28 creator application  32 creator version  36 creator host OS  40 original size (u64)
 *  48 current size (u64)   56 geometry (cylinders u16, heads u8, sectors per track u8)  60 disk type
 *  64 checksum             68 unique id (16)   84 saved state (u8)  85 reserved (427)
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import { LIMITS, checkRange } from "../../limits.js";
import type { ChsGeometry } from "./vhd-geometry.js";

export const VHD_FOOTER_SIZE = 512;
export const VHD_FOOTER_COOKIE = Buffer.from("conectix", "latin1");

/** Disk types the footer can name; only fixed, dynamic and differencing exist in practice. */
export const VhdDiskType = { fixed: 2, dynamic: 3, differencing: 4 } as const;
export type VhdDiskTypeName = keyof typeof VhdDiskType;

/** The footer's data offset for a fixed disk, which has no further structures. */
export const VHD_NO_DATA_OFFSET = 0xffff_ffff_ffff_ffffn;
/** Format version 1.0, the only one the specification defines. */
export const VHD_FORMAT_VERSION = 0x0001_0000;
/** The features field's reserved bit, which the specification says must always be set. */
export const VHD_FEATURES_RESERVED = 0x0000_0002;
/** VHD timestamps count seconds from 2000-01-01T00:00:00Z. */
export const VHD_EPOCH_MS = Date.UTC(2000, 0, 1);

const CHECKSUM_OFFSET = 64;

export interface VhdFooter {
  readonly features: number;
  readonly formatVersion: number;
  /** Offset of the dynamic disk header; VHD_NO_DATA_OFFSET for fixed disks. */
  readonly dataOffset: bigint;
  /** Seconds since 2000-01-01 UTC. */
  readonly timestamp: number;
  /** Four characters naming the program that created the image ("win ", "vpc ", "qem2", …). */
  readonly creatorApp: string;
  readonly creatorVersion: number;
  readonly creatorHostOs: string;
  readonly originalSize: number;
  readonly currentSize: number;
  readonly geometry: ChsGeometry;
  readonly diskType: number;
  readonly checksum: number;
  readonly uniqueId: Buffer;
  readonly savedState: boolean;
}

/** The VHD checksum: the one's complement of the byte sum of the structure, its checksum field read as zero. */
export function vhdChecksum(buf: Buffer, checksumOffset: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) sum += buf[i]!;
  for (let i = checksumOffset; i < checksumOffset + 4; i++) sum -= buf[i]!;
  return ~sum >>> 0;
}

/** True when `buf` starts with the footer cookie. */
export function hasFooterCookie(buf: Buffer): boolean {
  return buf.length >= VHD_FOOTER_SIZE && buf.subarray(0, 8).equals(VHD_FOOTER_COOKIE);
}

/** True when `buf` is a footer with the cookie and a correct checksum (what probing looks for). */
export function isValidFooter(buf: Buffer): boolean {
  return (
    hasFooterCookie(buf) &&
    vhdChecksum(buf.subarray(0, VHD_FOOTER_SIZE), CHECKSUM_OFFSET) === buf.readUInt32BE(CHECKSUM_OFFSET)
  );
}

export function diskTypeName(type: number): string {
  const known = Object.entries(VhdDiskType).find(([, v]) => v === type);
  return known ? known[0] : `unknown (${type})`;
}

/** Printable form of a four-character field: NULs and other control bytes shown as escapes. */
export function fourCc(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/**
 * Parses and verifies a footer. `where` names the copy ("footer at the end", "footer copy at offset 0") so a
 * bad checksum says which copy is damaged.
 */
export function parseVhdFooter(path: string, buf: Buffer, where: string): VhdFooter {
  if (!hasFooterCookie(buf)) throw new CorruptImageError(`${path}: no VHD footer ("conectix") in the ${where}`);
  const footer = buf.subarray(0, VHD_FOOTER_SIZE);
  const stored = footer.readUInt32BE(CHECKSUM_OFFSET);
  const computed = vhdChecksum(footer, CHECKSUM_OFFSET);
  if (stored !== computed) {
    throw new CorruptImageError(
      `${path}: VHD ${where} has a bad checksum (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)})`,
    );
  }
  const formatVersion = footer.readUInt32BE(12);
  if (formatVersion >>> 16 !== 1) {
    throw new UnsupportedFeatureError(
      `${path}: VHD format version ${formatVersion >>> 16}.${formatVersion & 0xffff} is not supported (only 1.x)`,
    );
  }
  return {
    features: footer.readUInt32BE(8),
    formatVersion,
    dataOffset: footer.readBigUInt64BE(16),
    timestamp: footer.readUInt32BE(24),
    creatorApp: footer.toString("latin1", 28, 32),
    creatorVersion: footer.readUInt32BE(32),
    creatorHostOs: footer.toString("latin1", 36, 40),
    // Sizes beyond the engine's ceiling are refused here, before anything is sized by them.
    originalSize: checkRange(path, "VHD original size", footer.readBigUInt64BE(40), 0, Number.MAX_SAFE_INTEGER),
    currentSize: checkRange(path, "VHD current size", footer.readBigUInt64BE(48), 0, LIMITS.maxVirtualSize),
    geometry: {
      cylinders: footer.readUInt16BE(56),
      heads: footer.readUInt8(58),
      sectorsPerTrack: footer.readUInt8(59),
    },
    diskType: footer.readUInt32BE(60),
    checksum: stored,
    uniqueId: Buffer.from(footer.subarray(68, 84)),
    savedState: footer.readUInt8(84) !== 0,
  };
}

/** Serialises a footer, computing its checksum (the `checksum` field of `f` is ignored). */
export function encodeVhdFooter(f: Omit<VhdFooter, "checksum">): Buffer {
  const buf = Buffer.alloc(VHD_FOOTER_SIZE);
  VHD_FOOTER_COOKIE.copy(buf, 0);
  buf.writeUInt32BE(f.features, 8);
  buf.writeUInt32BE(f.formatVersion, 12);
  buf.writeBigUInt64BE(f.dataOffset, 16);
  buf.writeUInt32BE(f.timestamp, 24);
  buf.write(f.creatorApp, 28, 4, "latin1");
  buf.writeUInt32BE(f.creatorVersion, 32);
  buf.write(f.creatorHostOs, 36, 4, "latin1");
  buf.writeBigUInt64BE(BigInt(f.originalSize), 40);
  buf.writeBigUInt64BE(BigInt(f.currentSize), 48);
  buf.writeUInt16BE(f.geometry.cylinders, 56);
  buf.writeUInt8(f.geometry.heads, 58);
  buf.writeUInt8(f.geometry.sectorsPerTrack, 59);
  buf.writeUInt32BE(f.diskType, 60);
  f.uniqueId.copy(buf, 68, 0, 16);
  buf.writeUInt8(f.savedState ? 1 : 0, 84);
  buf.writeUInt32BE(vhdChecksum(buf, CHECKSUM_OFFSET), CHECKSUM_OFFSET);
  return buf;
}

/** The footer's timestamp for a moment in time (clamped to the field's range). */
export function vhdTimestamp(ms: number): number {
  return Math.min(0xffff_ffff, Math.max(0, Math.floor((ms - VHD_EPOCH_MS) / 1000)));
}
