/**
 * The first megabyte of a VHDX ([MS-VHDX] 2.2): the file type identifier at 0, two 4 KiB headers at 64 KiB and
 * 128 KiB, and two copies of the region table at 192 KiB and 256 KiB. All little-endian, all checksummed with
 * CRC-32C. Of the two headers, the valid one with the higher sequence number is current; the other is the previous
 * state, kept so a torn header write never loses the file. The region table locates the BAT and metadata regions.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { crc32cWithZeroedField } from "./vhdx-crc32c.js";
import { formatGuid, guidBytes, isZeroGuid } from "./vhdx-guid.js";

const KiB = 1024;
const MiB = 1024 * KiB;

export const VHDX_SIGNATURE = Buffer.from("vhdxfile", "latin1");
const HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const;
const HEADER_SIZE = 4 * KiB;
const REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB] as const;
const REGION_TABLE_SIZE = 64 * KiB;
const MAX_REGION_ENTRIES = 2047;

export const BAT_REGION_GUID = guidBytes("2DC27766-F623-4200-9D64-115E9BFD4A08");
export const METADATA_REGION_GUID = guidBytes("8B7CA206-4790-4B9A-B8FE-575F050F886E");

export interface VhdxHeader {
  /** 1 for the header at 64 KiB, 2 for the one at 128 KiB. */
  readonly copy: 1 | 2;
  readonly sequenceNumber: bigint;
  readonly fileWriteGuid: string;
  readonly dataWriteGuid: string;
  readonly logGuid: string;
  readonly logVersion: number;
  readonly version: number;
  readonly logLength: number;
  readonly logOffset: number;
}

export interface VhdxRegion {
  readonly fileOffset: number;
  readonly length: number;
}

export interface VhdxHeaderSection {
  /** The creator string of the file type identifier (diagnostic only, per the specification). */
  readonly creator: string;
  readonly header: VhdxHeader;
  readonly bat: VhdxRegion;
  readonly metadata: VhdxRegion;
  /** Which region table copy was used (the second only when the first is damaged). */
  readonly regionTableCopy: 1 | 2;
  /** How the region table copies were found, where it matters (see readVhdxHeaderSection). */
  readonly warnings: readonly string[];
}

export async function readVhdxHeaderSection(file: ImageInput): Promise<VhdxHeaderSection> {
  const path = file.path;
  const identifier = await file.readExact(0, 8 + 512, undefined, "VHDX file type identifier");
  if (!identifier.subarray(0, 8).equals(VHDX_SIGNATURE)) {
    throw new CorruptImageError(`${path}: not a VHDX file (no "vhdxfile" signature)`);
  }
  const creatorText = identifier.subarray(8).toString("utf16le");
  const nul = creatorText.indexOf("\0");
  const creator = nul < 0 ? creatorText : creatorText.slice(0, nul);

  const header = await currentHeader(file);
  if (header.version !== 1) {
    throw new UnsupportedFeatureError(`${path}: VHDX version ${header.version} is not supported (only version 1)`);
  }
  if (header.logGuid !== "00000000-0000-0000-0000-000000000000") {
    // A non-zero LogGuid means log entries may hold metadata updates that never reached their place: reading
    // without replaying them could return stale data, and replaying means writing to the file.
    throw new UnsupportedFeatureError(
      `${path}: the VHDX has a log that may need replaying (LogGuid ${header.logGuid}), as after a crash or an ` +
        `unclean shutdown; chromogenic only reads and does not replay logs. Open it once in Hyper-V (or mount it ` +
        `in Windows), or run "qemu-img check -r all ${path}", then convert it again`,
    );
  }

  const tables = await Promise.all(REGION_TABLE_OFFSETS.map((at) => readRegionTable(file, at)));
  const usable = tables.findIndex((t) => !(t instanceof Error));
  if (usable < 0) throw tables[0] as Error;
  const regions = tables[usable] as ReadonlyMap<string, VhdxRegion>;
  const warnings = regionTableWarnings(path, tables);
  const bat = regions.get(BAT_REGION_GUID.toString("hex"));
  const metadata = regions.get(METADATA_REGION_GUID.toString("hex"));
  if (!bat || !metadata) {
    throw new CorruptImageError(`${path}: VHDX region table lacks the ${bat ? "metadata" : "BAT"} region`);
  }
  if (bat.fileOffset < metadata.fileOffset + metadata.length && metadata.fileOffset < bat.fileOffset + bat.length) {
    throw new CorruptImageError(`${path}: VHDX BAT and metadata regions overlap`);
  }
  return { creator, header, bat, metadata, regionTableCopy: (usable + 1) as 1 | 2, warnings };
}

/**
 * Where qemu-img reads the region table differently, on purpose: it reads only the first copy, and refuses the
 * file when that copy is damaged. The second copy exists for exactly that case (a torn write of the first), so
 * we read it then, and say so. When both copies are valid but differ, the first is read, as qemu does.
 */
function regionTableWarnings(path: string, tables: readonly (ReadonlyMap<string, VhdxRegion> | Error)[]): string[] {
  const [first, second] = tables;
  if (first instanceof Error && !(second instanceof Error)) {
    return [
      `the first region table copy is unusable (${first.message.replace(`${path}: `, "")}); the second, which ` +
        "VHDX keeps for this case, was read; qemu-img reads only the first copy and refuses this file",
    ];
  }
  if (first instanceof Error || second instanceof Error || sameRegions(first!, second!)) return [];
  return ["the two region table copies differ; the first was read, as qemu-img does"];
}

function sameRegions(a: ReadonlyMap<string, VhdxRegion>, b: ReadonlyMap<string, VhdxRegion>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, r] of a) {
    const other = b.get(key);
    if (!other || other.fileOffset !== r.fileOffset || other.length !== r.length) return false;
  }
  return true;
}

/** The current header: the valid one with the greater sequence number. */
async function currentHeader(file: ImageInput): Promise<VhdxHeader> {
  const raws = await Promise.all(HEADER_OFFSETS.map((at) => file.readExact(at, HEADER_SIZE, undefined, "VHDX header")));
  const parsed = raws.map((raw, i) => parseHeader(file.path, raw, (i + 1) as 1 | 2));
  const [a, b] = parsed as [VhdxHeader | Error, VhdxHeader | Error];
  if (a instanceof Error && b instanceof Error) {
    throw new CorruptImageError(`${file.path}: neither VHDX header is valid (${a.message}; ${b.message})`);
  }
  if (a instanceof Error) return b as VhdxHeader;
  if (b instanceof Error) return a;
  if (a.sequenceNumber === b.sequenceNumber && !raws[0]!.equals(raws[1]!)) {
    throw new CorruptImageError(
      `${file.path}: both VHDX headers have sequence number ${a.sequenceNumber} but differ: cannot tell which is current`,
    );
  }
  return b.sequenceNumber > a.sequenceNumber ? b : a;
}

function parseHeader(path: string, raw: Buffer, copy: 1 | 2): VhdxHeader | Error {
  const where = `VHDX header ${copy}`;
  if (raw.toString("latin1", 0, 4) !== "head")
    return new CorruptImageError(`${path}: ${where} has no "head" signature`);
  const stored = raw.readUInt32LE(4);
  const computed = crc32cWithZeroedField(raw, 4);
  if (stored !== computed) {
    return new CorruptImageError(
      `${path}: ${where} has a bad CRC-32C (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)})`,
    );
  }
  const logOffset = raw.readBigUInt64LE(72);
  return {
    copy,
    sequenceNumber: raw.readBigUInt64LE(8),
    fileWriteGuid: formatGuid(raw, 16),
    dataWriteGuid: formatGuid(raw, 32),
    logGuid: isZeroGuid(raw, 48) ? "00000000-0000-0000-0000-000000000000" : formatGuid(raw, 48),
    logVersion: raw.readUInt16LE(64),
    version: raw.readUInt16LE(66),
    logLength: raw.readUInt32LE(68),
    logOffset: logOffset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(logOffset),
  };
}

/** The regions of one region table copy, keyed by the hex of their GUID bytes, or why the copy is unusable. */
async function readRegionTable(file: ImageInput, at: number): Promise<ReadonlyMap<string, VhdxRegion> | Error> {
  const path = file.path;
  const where = `VHDX region table at ${at / KiB} KiB`;
  const raw = await file.readExact(at, REGION_TABLE_SIZE, undefined, "VHDX region table");
  if (raw.toString("latin1", 0, 4) !== "regi")
    return new CorruptImageError(`${path}: ${where} has no "regi" signature`);
  const stored = raw.readUInt32LE(4);
  const computed = crc32cWithZeroedField(raw, 4);
  if (stored !== computed) {
    return new CorruptImageError(
      `${path}: ${where} has a bad CRC-32C (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)})`,
    );
  }
  const count = raw.readUInt32LE(8);
  if (count > MAX_REGION_ENTRIES) {
    return new CorruptImageError(`${path}: ${where} claims ${count} entries (at most ${MAX_REGION_ENTRIES})`);
  }
  const regions = new Map<string, VhdxRegion>();
  for (let i = 0; i < count; i++) {
    const entry = raw.subarray(16 + 32 * i, 48 + 32 * i);
    const guid = entry.subarray(0, 16);
    const fileOffset = entry.readBigUInt64LE(16);
    const length = entry.readUInt32LE(24);
    const required = (entry.readUInt32LE(28) & 1) === 1;
    const known = guid.equals(BAT_REGION_GUID) || guid.equals(METADATA_REGION_GUID);
    if (!known) {
      if (required) {
        throw new UnsupportedFeatureError(
          `${path}: VHDX has a required region ${formatGuid(guid)} that chromogenic does not know`,
        );
      }
      continue;
    }
    const key = guid.toString("hex");
    if (regions.has(key)) return new CorruptImageError(`${path}: ${where} lists region ${formatGuid(guid)} twice`);
    if (fileOffset < BigInt(MiB) || fileOffset % BigInt(MiB) !== 0n || length % MiB !== 0 || length === 0) {
      return new CorruptImageError(
        `${path}: ${where}: region ${formatGuid(guid)} at ${fileOffset} (+${length}) is not 1 MiB-aligned after the header`,
      );
    }
    if (fileOffset + BigInt(length) > BigInt(file.size)) {
      return new CorruptImageError(
        `${path}: VHDX region ${formatGuid(guid)} at ${fileOffset} (+${length} bytes) lies beyond the end of the ` +
          `file (${file.size} bytes): the image is truncated`,
      );
    }
    regions.set(key, { fileOffset: Number(fileOffset), length });
  }
  return regions;
}
