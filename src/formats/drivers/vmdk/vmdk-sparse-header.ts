/**
 * The 512-byte header of a hosted sparse extent ("KDMV", VMware Virtual Disk Format 5.0), shared by
 * monolithicSparse, twoGbMaxExtentSparse pieces and streamOptimized files. All fields are little-endian; sizes
 * and offsets are in 512-byte sectors. Versions: 1 (the original, what Bochs' bximage and qemu write), 2 (adds
 * the zeroed-grain entry), 3 (streamOptimized, and persistent changed-block tracking on ESXi, which a reader
 * may ignore).
 *
 * Parsing validates every field that later sizes an allocation or a read: grain size, table sizes, capacity.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import { LIMITS } from "../../limits.js";

export const SECTOR = 512;
export const SPARSE_MAGIC = 0x564d444b; // "KDMV" read as a little-endian u32
/** ESX's older "COWD" sparse format (vmfsSparse deltas), recognised only to refuse it clearly. */
export const COWD_MAGIC = 0x44574f43;

export const FLAG_VALID_NEWLINE_DETECTOR = 1 << 0;
export const FLAG_REDUNDANT_GRAIN_TABLE = 1 << 1;
export const FLAG_ZEROED_GRAIN_GTE = 1 << 2;
export const FLAG_COMPRESSED = 1 << 16;
export const FLAG_MARKERS = 1 << 17;

export const COMPRESSION_NONE = 0;
export const COMPRESSION_DEFLATE = 1;

/** gdOffset of a streamOptimized header: the real offset is in the footer at the end of the file. */
export const GD_AT_END = 0xffffffffffffffffn;

/** Types of the sector-sized metadata markers of a streamOptimized file (a grain marker has its own shape). */
export const MARKER_END_OF_STREAM = 0;
export const MARKER_GRAIN_TABLE = 1;
export const MARKER_GRAIN_DIRECTORY = 2;
export const MARKER_FOOTER = 3;

/** The grain table entry meaning "this grain reads as zeros" (version 2+ with FLAG_ZEROED_GRAIN_GTE). */
export const GTE_ZEROED = 1;

/** Largest grain accepted: 2 MiB (VMware writes 64 KiB; a bigger grain only makes a hostile image costlier). */
export const MAX_GRAIN_SECTORS = 4096;
/** Entries per grain table: VMware always uses 512, and qemu refuses more. */
export const MAX_GTES_PER_GT = 512;

const NEWLINE_CHECK = Buffer.from("\n \r\n", "latin1");

export interface SparseHeader {
  readonly version: number;
  readonly flags: number;
  /** Guest sectors this extent holds. */
  readonly capacity: number;
  readonly grainSectors: number;
  readonly descriptorOffset: number;
  readonly descriptorSectors: number;
  readonly gtesPerGt: number;
  readonly rgdOffset: number;
  /** Sector of the grain directory, or GD_AT_END (as a bigint marker, see `gdAtEnd`). */
  readonly gdOffset: number;
  readonly gdAtEnd: boolean;
  readonly overheadSectors: number;
  readonly uncleanShutdown: boolean;
  readonly compressAlgorithm: number;
}

/** Derived sizes every reader and writer needs. */
export interface SparseGeometry {
  readonly grainSize: number;
  readonly grains: number;
  readonly gtCount: number;
  /** Bytes of one grain table as stored (entries × 4). */
  readonly gtBytes: number;
  /** Guest bytes one grain table covers. */
  readonly gtSpan: number;
}

export function sparseGeometry(header: Pick<SparseHeader, "capacity" | "grainSectors" | "gtesPerGt">): SparseGeometry {
  const grainSize = header.grainSectors * SECTOR;
  const grains = Math.ceil(header.capacity / header.grainSectors);
  return {
    grainSize,
    grains,
    gtCount: Math.ceil(grains / header.gtesPerGt),
    gtBytes: header.gtesPerGt * 4,
    gtSpan: grainSize * header.gtesPerGt,
  };
}

export function isCompressed(header: SparseHeader): boolean {
  return header.compressAlgorithm === COMPRESSION_DEFLATE;
}

export function hasMarkers(header: SparseHeader): boolean {
  return (header.flags & FLAG_MARKERS) !== 0;
}

/**
 * Parses and validates a header (the first 512 bytes of a sparse extent, or a streamOptimized footer).
 * `where` names the file (and "footer" when it is one) in errors.
 */
export function parseSparseHeader(buf: Buffer, where: string): SparseHeader {
  if (buf.length < SECTOR) throw new CorruptImageError(`${where}: sparse extent header is truncated`);
  const magic = buf.readUInt32LE(0);
  if (magic === COWD_MAGIC) {
    throw new UnsupportedFeatureError(
      `${where}: this is an ESX "COWD" sparse extent (vmfsSparse, a snapshot delta), which chromogenic cannot read`,
    );
  }
  if (magic !== SPARSE_MAGIC) throw new CorruptImageError(`${where}: not a VMDK sparse extent (no KDMV magic)`);
  const version = buf.readUInt32LE(4);
  if (version < 1 || version > 3) {
    throw new UnsupportedFeatureError(`${where}: VMDK sparse extent version ${version} is not supported (1 to 3 are)`);
  }
  const flags = buf.readUInt32LE(8);
  const u64 = (at: number, what: string, max: number) => {
    const v = buf.readBigUInt64LE(at);
    if (v > BigInt(max)) throw new CorruptImageError(`${where}: ${what} ${v} is beyond the allowed ${max}`);
    return Number(v);
  };
  const capacity = u64(12, "capacity (sectors)", LIMITS.maxVirtualSize / SECTOR);
  const grainSectors = u64(20, "grain size (sectors)", MAX_GRAIN_SECTORS);
  if (grainSectors === 0 || (grainSectors & (grainSectors - 1)) !== 0) {
    throw new CorruptImageError(`${where}: grain size of ${grainSectors} sectors is not a power of two`);
  }
  const descriptorOffset = u64(28, "descriptor offset", Number.MAX_SAFE_INTEGER);
  const descriptorSectors = u64(36, "descriptor size (sectors)", LIMITS.maxHeaderBytes / SECTOR);
  const gtesPerGt = buf.readUInt32LE(44);
  if (gtesPerGt < 1 || gtesPerGt > MAX_GTES_PER_GT) {
    throw new CorruptImageError(
      `${where}: ${gtesPerGt} entries per grain table is outside the allowed range 1..${MAX_GTES_PER_GT}`,
    );
  }
  const rgdOffset = u64(48, "redundant grain directory offset", Number.MAX_SAFE_INTEGER);
  const rawGd = buf.readBigUInt64LE(56);
  const gdAtEnd = rawGd === GD_AT_END;
  const gdOffset = gdAtEnd ? 0 : u64(56, "grain directory offset", Number.MAX_SAFE_INTEGER);
  const overheadSectors = u64(64, "overhead (sectors)", Number.MAX_SAFE_INTEGER);
  const compressAlgorithm = buf.readUInt16LE(77);
  if (compressAlgorithm !== COMPRESSION_NONE && compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw new UnsupportedFeatureError(`${where}: grain compression algorithm ${compressAlgorithm} is not supported`);
  }
  // Checked after the sizes, so a fuzzed header is reported by its most telling fault.
  if (flags & FLAG_VALID_NEWLINE_DETECTOR && !buf.subarray(73, 77).equals(NEWLINE_CHECK)) {
    throw new CorruptImageError(
      `${where}: the header's newline check bytes are altered: the file was probably transferred in text mode`,
    );
  }
  const header: SparseHeader = {
    version,
    flags,
    capacity,
    grainSectors,
    descriptorOffset,
    descriptorSectors,
    gtesPerGt,
    rgdOffset,
    gdOffset,
    gdAtEnd,
    overheadSectors,
    uncleanShutdown: buf[72] !== 0,
    compressAlgorithm,
  };
  const { gtCount } = sparseGeometry(header);
  // qemu caps its L1 table too; a huge directory only comes from a hostile or corrupt header.
  if (gtCount * 4 > LIMITS.maxTableBytes) {
    throw new CorruptImageError(
      `${where}: the grain directory would need ${gtCount} entries (${gtCount * 4} bytes), more than the ` +
        `${LIMITS.maxTableBytes}-byte limit (capacity ${capacity} sectors, grain ${grainSectors} sectors, ` +
        `${gtesPerGt} entries per table)`,
    );
  }
  if (isCompressed(header) && !hasMarkers(header)) {
    throw new UnsupportedFeatureError(`${where}: compressed grains without grain markers are not supported`);
  }
  return header;
}

/** The fields a writer sets: those a reader finds, except the unclean-shutdown flag (written as clean). */
export interface SparseHeaderFields extends Omit<SparseHeader, "gdOffset" | "gdAtEnd" | "uncleanShutdown"> {
  /** A sector number, or "at-end" for GD_AT_END. */
  readonly gdOffset: number | "at-end";
}

/** The 512-byte on-disk header for `fields` (also the body of a streamOptimized footer). */
export function encodeSparseHeader(fields: SparseHeaderFields): Buffer {
  const buf = Buffer.alloc(SECTOR);
  buf.writeUInt32LE(SPARSE_MAGIC, 0);
  buf.writeUInt32LE(fields.version, 4);
  buf.writeUInt32LE(fields.flags >>> 0, 8);
  buf.writeBigUInt64LE(BigInt(fields.capacity), 12);
  buf.writeBigUInt64LE(BigInt(fields.grainSectors), 20);
  buf.writeBigUInt64LE(BigInt(fields.descriptorOffset), 28);
  buf.writeBigUInt64LE(BigInt(fields.descriptorSectors), 36);
  buf.writeUInt32LE(fields.gtesPerGt, 44);
  buf.writeBigUInt64LE(BigInt(fields.rgdOffset), 48);
  buf.writeBigUInt64LE(fields.gdOffset === "at-end" ? GD_AT_END : BigInt(fields.gdOffset), 56);
  buf.writeBigUInt64LE(BigInt(fields.overheadSectors), 64);
  buf[72] = 0; // uncleanShutdown
  NEWLINE_CHECK.copy(buf, 73);
  buf.writeUInt16LE(fields.compressAlgorithm, 77);
  return buf;
}

/** A sector-sized metadata marker of a streamOptimized file: value, size 0, type, zero padding. */
export function encodeMarker(type: number, value: number): Buffer {
  const buf = Buffer.alloc(SECTOR);
  buf.writeBigUInt64LE(BigInt(value), 0);
  buf.writeUInt32LE(0, 8);
  buf.writeUInt32LE(type, 12);
  return buf;
}
