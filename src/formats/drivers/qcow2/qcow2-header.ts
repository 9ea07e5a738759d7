/**
 * The qcow2 header (versions 2 and 3) and its header extensions, parsed and checked before anything else in
 * the file is trusted. Every field that later sizes an allocation or positions a read is validated here, so
 * the rest of the driver can rely on: a sane cluster size, an L1 table that fits in memory and in the file
 * and covers the whole virtual disk, and feature bits it understands.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LIMITS, checkRange } from "../../limits.js";

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

/** Incompatible feature bits (header bytes 72..79). */
export const INCOMPATIBLE = {
  dirty: 1n << 0n,
  corrupt: 1n << 1n,
  externalDataFile: 1n << 2n,
  compressionType: 1n << 3n,
  extendedL2: 1n << 4n,
} as const;
const KNOWN_INCOMPATIBLE = Object.values(INCOMPATIBLE).reduce((all, bit) => all | bit, 0n);

export const COMPATIBLE = { lazyRefcounts: 1n << 0n } as const;
export const AUTOCLEAR = { bitmaps: 1n << 0n, rawExternalData: 1n << 1n } as const;

/** Header extension types. */
const EXTENSION = {
  end: 0x00000000,
  backingFormat: 0xe2792aca,
  featureNameTable: 0x6803f857,
  bitmaps: 0x23852875,
  fullDiskEncryption: 0x0537be77,
  externalDataFile: 0x44415441,
} as const;

const V2_HEADER_BYTES = 72;
const V3_MIN_HEADER_BYTES = 104;
/** qemu refuses longer backing file names; so do we (it also bounds what a hostile header makes us read). */
const MAX_BACKING_NAME_BYTES = 1023;
/** qemu stores the backing format in a 16-byte buffer including the terminating NUL. */
const MAX_BACKING_FORMAT_BYTES = 15;
/** PATH_MAX: a longer external data file name cannot name a real file. */
const MAX_DATA_FILE_NAME_BYTES = 4096;
/** qemu's own ceiling on internal snapshots. */
const MAX_SNAPSHOTS = 65536;
const FEATURE_NAME_ENTRY_BYTES = 48;

export type Qcow2Compression = "zlib" | "zstd";

export interface Qcow2Header {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  readonly virtualSize: number;
  /** 0 for unencrypted; anything else is refused while parsing, so always 0 here. */
  readonly cryptMethod: number;
  readonly l1Entries: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
  readonly snapshotCount: number;
  readonly snapshotsOffset: number;
  readonly incompatibleFeatures: bigint;
  readonly compatibleFeatures: bigint;
  readonly autoclearFeatures: bigint;
  readonly refcountBits: number;
  readonly headerLength: number;
  readonly compression: Qcow2Compression;
  readonly extendedL2: boolean;
  /** Bytes per L2 entry: 8, or 16 with extended L2 (the second word is the subcluster bitmap). */
  readonly l2EntryBytes: 8 | 16;
  readonly l2Entries: number;
  readonly dirty: boolean;
  readonly lazyRefcounts: boolean;
  readonly hasExternalDataFile: boolean;
  readonly rawExternalData: boolean;
  readonly hasBitmaps: boolean;
  readonly backingFile?: string;
  readonly backingFormat?: string;
  readonly dataFile?: string;
  /** "incompatible:5" → name, from the feature name table, for messages about bits we do not know. */
  readonly featureNames: ReadonlyMap<string, string>;
}

/** Reads and validates the header of the qcow2 image `file`. */
export async function readQcow2Header(file: ImageInput): Promise<Qcow2Header> {
  const path = file.path;
  if (file.size < V2_HEADER_BYTES) {
    throw new CorruptImageError(`${path}: file is ${file.size} bytes, too short for a qcow2 header`);
  }
  const fixed = await file.readExact(0, Math.min(file.size, V3_MIN_HEADER_BYTES), undefined, "qcow2 header");
  if (fixed.readUInt32BE(0) !== QCOW2_MAGIC) throw new CorruptImageError(`${path}: not a qcow2 image (bad magic)`);
  const version = fixed.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw new UnsupportedFeatureError(`${path}: qcow2 version ${version} is not supported (only 2 and 3 exist)`);
  }
  if (version === 3 && fixed.length < V3_MIN_HEADER_BYTES) {
    throw new CorruptImageError(`${path}: file is ${file.size} bytes, too short for a qcow2 version 3 header`);
  }

  const clusterBits = fixed.readUInt32BE(20);
  // 512 bytes is the format's floor; 2 MiB is qemu's implementation ceiling, and the largest cluster we allocate.
  checkRange(path, "qcow2 cluster_bits", clusterBits, 9, 21);
  const clusterSize = 2 ** clusterBits;

  const virtualSize = checkRange(path, "qcow2 virtual size", fixed.readBigUInt64BE(24), 0, LIMITS.maxVirtualSize);
  const cryptMethod = fixed.readUInt32BE(32);
  if (cryptMethod !== 0) {
    const method = cryptMethod === 1 ? "AES" : cryptMethod === 2 ? "LUKS" : `method ${cryptMethod}`;
    throw new UnsupportedFeatureError(`${path}: the image is encrypted (${method}); encrypted qcow2 is not supported`);
  }

  let incompatibleFeatures = 0n;
  let compatibleFeatures = 0n;
  let autoclearFeatures = 0n;
  let refcountOrder = 4;
  let headerLength = V2_HEADER_BYTES;
  if (version === 3) {
    incompatibleFeatures = fixed.readBigUInt64BE(72);
    compatibleFeatures = fixed.readBigUInt64BE(80);
    autoclearFeatures = fixed.readBigUInt64BE(88);
    refcountOrder = checkRange(path, "qcow2 refcount_order", fixed.readUInt32BE(96), 0, 6);
    headerLength = fixed.readUInt32BE(100);
    if (headerLength < V3_MIN_HEADER_BYTES || headerLength % 8 !== 0 || headerLength > clusterSize) {
      throw new CorruptImageError(
        `${path}: qcow2 header_length ${headerLength} is invalid (must be a multiple of 8 from ${V3_MIN_HEADER_BYTES} to the cluster size ${clusterSize})`,
      );
    }
  }

  // The whole first cluster holds the header, its extensions and the backing file name.
  const headerCluster = await file.readPadded(0, clusterSize);
  // As in qemu, the extension area stops where the backing file name starts, or at the end of the cluster.
  const backingOffset = fixed.readBigUInt64BE(8);
  const extensionAreaEnd =
    backingOffset > 0n && backingOffset < BigInt(clusterSize) ? Number(backingOffset) : clusterSize;
  const extensions = parseExtensions(path, headerCluster, version, headerLength, extensionAreaEnd);

  const featureNames = extensions.featureNames;
  const unknown = incompatibleFeatures & ~KNOWN_INCOMPATIBLE;
  if (unknown !== 0n) {
    const names: string[] = [];
    for (let bit = 0n; bit < 64n; bit++) {
      if (unknown & (1n << bit)) names.push(featureNames.get(`incompatible:${bit}`) ?? `bit ${bit}`);
    }
    throw new UnsupportedFeatureError(
      `${path}: the image uses incompatible qcow2 features chromogenic does not know: ${names.join(", ")}`,
    );
  }
  if (incompatibleFeatures & INCOMPATIBLE.corrupt) {
    throw new CorruptImageError(
      `${path}: qemu marked this qcow2 image corrupt (incompatible feature "corrupt" set); repair it with "qemu-img check -r all" first`,
    );
  }
  if (extensions.encrypted) {
    throw new UnsupportedFeatureError(
      `${path}: the image carries a full disk encryption header; encrypted qcow2 is not supported`,
    );
  }

  const extendedL2 = (incompatibleFeatures & INCOMPATIBLE.extendedL2) !== 0n;
  if (extendedL2 && clusterBits < 14) {
    throw new CorruptImageError(
      `${path}: qcow2 extended L2 entries need clusters of at least 16 KiB, but cluster_bits is ${clusterBits}`,
    );
  }

  const compression = parseCompressionType(path, headerCluster, headerLength, incompatibleFeatures);

  const hasExternalDataFile = (incompatibleFeatures & INCOMPATIBLE.externalDataFile) !== 0n;
  const rawExternalData = (autoclearFeatures & AUTOCLEAR.rawExternalData) !== 0n;
  if (hasExternalDataFile && extensions.dataFile === undefined) {
    throw new UnsupportedFeatureError(
      `${path}: the image keeps its data in an external data file but does not record that file's name`,
    );
  }
  if (!hasExternalDataFile && extensions.dataFile !== undefined) {
    throw new CorruptImageError(
      `${path}: the image names an external data file but its external-data-file feature bit is not set`,
    );
  }

  const backingFile = await readBackingFileName(file, fixed, clusterSize);
  if (backingFile !== undefined && hasExternalDataFile && rawExternalData) {
    throw new CorruptImageError(`${path}: a backing file cannot be combined with a raw external data file`);
  }

  const l2EntryBytes = extendedL2 ? 16 : 8;
  const l2Entries = clusterSize / l2EntryBytes;
  const l1Entries = fixed.readUInt32BE(36);
  const l1TableOffset = checkRange(
    path,
    "qcow2 l1_table_offset",
    fixed.readBigUInt64BE(40),
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const refcountTableOffset = checkRange(
    path,
    "qcow2 refcount_table_offset",
    fixed.readBigUInt64BE(48),
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const refcountTableClusters = fixed.readUInt32BE(56);
  const snapshotCount = checkRange(path, "qcow2 nb_snapshots", fixed.readUInt32BE(60), 0, MAX_SNAPSHOTS);
  const snapshotsOffset = checkRange(
    path,
    "qcow2 snapshots_offset",
    fixed.readBigUInt64BE(64),
    0,
    Number.MAX_SAFE_INTEGER,
  );

  const header: Qcow2Header = {
    version,
    clusterBits,
    clusterSize,
    virtualSize,
    cryptMethod,
    l1Entries,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters,
    snapshotCount,
    snapshotsOffset,
    incompatibleFeatures,
    compatibleFeatures,
    autoclearFeatures,
    refcountBits: 2 ** refcountOrder,
    headerLength,
    compression,
    extendedL2,
    l2EntryBytes,
    l2Entries,
    dirty: (incompatibleFeatures & INCOMPATIBLE.dirty) !== 0n,
    lazyRefcounts: (compatibleFeatures & COMPATIBLE.lazyRefcounts) !== 0n,
    hasExternalDataFile,
    rawExternalData,
    hasBitmaps: extensions.hasBitmaps,
    backingFile,
    backingFormat: extensions.backingFormat,
    dataFile: extensions.dataFile,
    featureNames,
  };
  validateTables(file, header);
  return header;
}

interface HeaderExtensions {
  readonly backingFormat?: string;
  readonly dataFile?: string;
  readonly encrypted: boolean;
  readonly hasBitmaps: boolean;
  readonly featureNames: Map<string, string>;
}

/** Walks the header extensions that follow the header, up to `areaEnd` inside the first cluster. */
function parseExtensions(
  path: string,
  cluster: Buffer,
  version: number,
  headerLength: number,
  areaEnd: number,
): HeaderExtensions {
  const result: {
    backingFormat?: string;
    dataFile?: string;
    encrypted: boolean;
    hasBitmaps: boolean;
    featureNames: Map<string, string>;
  } = { encrypted: false, hasBitmaps: false, featureNames: new Map() };
  const seen = new Set<number>();
  let at = version === 2 ? V2_HEADER_BYTES : headerLength;
  // Extensions end with an explicit end marker or when their area runs out.
  while (at + 8 <= areaEnd) {
    const type = cluster.readUInt32BE(at);
    const length = cluster.readUInt32BE(at + 4);
    if (type === EXTENSION.end) return result;
    const dataStart = at + 8;
    const padded = Math.ceil(length / 8) * 8;
    if (length > LIMITS.maxHeaderBytes || dataStart + length > areaEnd) {
      throw new CorruptImageError(
        `${path}: qcow2 header extension 0x${type.toString(16)} at offset ${at} claims ${length} bytes, past the end of the header extension area`,
      );
    }
    const data = cluster.subarray(dataStart, dataStart + length);
    const known = (Object.values(EXTENSION) as number[]).includes(type);
    if (known && seen.has(type)) {
      throw new CorruptImageError(`${path}: qcow2 header extension 0x${type.toString(16)} appears more than once`);
    }
    seen.add(type);
    switch (type) {
      case EXTENSION.backingFormat:
        if (length === 0 || length > MAX_BACKING_FORMAT_BYTES) {
          throw new CorruptImageError(`${path}: qcow2 backing format name is ${length} bytes long`);
        }
        result.backingFormat = printableName(path, "backing format", data);
        break;
      case EXTENSION.externalDataFile:
        if (length === 0 || length > MAX_DATA_FILE_NAME_BYTES) {
          throw new CorruptImageError(`${path}: qcow2 external data file name is ${length} bytes long`);
        }
        result.dataFile = fileName(path, "external data file name", data);
        break;
      case EXTENSION.featureNameTable:
        for (let e = 0; e + FEATURE_NAME_ENTRY_BYTES <= data.length; e += FEATURE_NAME_ENTRY_BYTES) {
          const kind = ["incompatible", "compatible", "autoclear"][data[e]!] ?? `type${data[e]}`;
          const raw = data.subarray(e + 2, e + FEATURE_NAME_ENTRY_BYTES);
          const nul = raw.indexOf(0);
          const name = raw.subarray(0, nul < 0 ? raw.length : nul).toString("latin1");
          result.featureNames.set(`${kind}:${data[e + 1]}`, name.replace(/[^\x20-\x7e]/g, "?"));
        }
        break;
      case EXTENSION.fullDiskEncryption:
        result.encrypted = true;
        break;
      case EXTENSION.bitmaps:
        result.hasBitmaps = true;
        break;
      default:
        // Unknown extensions may be ignored safely; that is what the format promises.
        break;
    }
    at = dataStart + padded;
  }
  return result;
}

/** compression_type (byte 104) is present only when header_length covers it. */
function parseCompressionType(
  path: string,
  cluster: Buffer,
  headerLength: number,
  incompatibleFeatures: bigint,
): Qcow2Compression {
  const present = headerLength > 104;
  const type = present ? cluster[104]! : 0;
  const flagged = (incompatibleFeatures & INCOMPATIBLE.compressionType) !== 0n;
  if (flagged && type === 0) {
    throw new CorruptImageError(`${path}: qcow2 compression type bit is set but compression_type is zlib (0)`);
  }
  if (!flagged && type !== 0) {
    throw new CorruptImageError(
      `${path}: qcow2 compression_type is ${type} but the compression type feature bit is not set`,
    );
  }
  if (type === 0) return "zlib";
  if (type === 1) return "zstd";
  throw new UnsupportedFeatureError(`${path}: qcow2 compression_type ${type} is not supported (known: zlib, zstd)`);
}

async function readBackingFileName(file: ImageInput, fixed: Buffer, clusterSize: number): Promise<string | undefined> {
  const path = file.path;
  const offset = fixed.readBigUInt64BE(8);
  if (offset === 0n) return undefined;
  const length = fixed.readUInt32BE(16);
  if (length === 0 || length > MAX_BACKING_NAME_BYTES) {
    throw new CorruptImageError(
      `${path}: qcow2 backing file name length ${length} is invalid (1..${MAX_BACKING_NAME_BYTES})`,
    );
  }
  // qemu keeps the name inside the first cluster, after the header; so do we.
  const at = checkRange(path, "qcow2 backing_file_offset", offset, V2_HEADER_BYTES, clusterSize - length);
  const bytes = await file.readExact(at, length, undefined, "qcow2 backing file name");
  return fileName(path, "backing file name", bytes);
}

/** A file name stored in the header: UTF-8 without NUL bytes (which would truncate it for any OS call). */
function fileName(path: string, what: string, bytes: Buffer): string {
  if (bytes.includes(0)) throw new CorruptImageError(`${path}: qcow2 ${what} contains a NUL byte`);
  return bytes.toString("utf8");
}

function printableName(path: string, what: string, bytes: Buffer): string {
  const text = bytes.toString("latin1");
  if (!/^[\x21-\x7e]+$/.test(text)) throw new CorruptImageError(`${path}: qcow2 ${what} is not a printable name`);
  return text;
}

interface Span {
  readonly what: string;
  readonly start: number;
  readonly end: number;
}

/** Checks the metadata tables' positions: aligned, inside the file, not overlapping one another. */
function validateTables(file: ImageInput, h: Qcow2Header): void {
  const path = file.path;
  // Guest bytes one L1 entry maps (one full L2 table's worth of clusters).
  const l1EntrySpan = h.clusterSize * h.l2Entries;
  const l1Needed = Math.ceil(h.virtualSize / l1EntrySpan);
  if (h.l1Entries < l1Needed) {
    throw new CorruptImageError(
      `${path}: qcow2 l1_size ${h.l1Entries} is too small for the virtual size ${h.virtualSize} (needs ${l1Needed} entries)`,
    );
  }
  const l1Bytes = h.l1Entries * 8;
  if (l1Bytes > LIMITS.maxTableBytes) {
    throw new CorruptImageError(
      `${path}: qcow2 l1_size ${h.l1Entries} (${l1Bytes} bytes) exceeds the ${LIMITS.maxTableBytes}-byte table limit`,
    );
  }
  const refcountBytes = h.refcountTableClusters * h.clusterSize;
  if (refcountBytes > LIMITS.maxTableBytes) {
    throw new CorruptImageError(
      `${path}: qcow2 refcount_table_clusters ${h.refcountTableClusters} (${refcountBytes} bytes) exceeds the ${LIMITS.maxTableBytes}-byte table limit`,
    );
  }

  const spans: Span[] = [{ what: "header", start: 0, end: h.clusterSize }];
  const table = (what: string, offset: number, bytes: number): void => {
    if (bytes === 0) return;
    if (offset % h.clusterSize !== 0) {
      throw new CorruptImageError(
        `${path}: qcow2 ${what} offset ${offset} is not aligned to the cluster size ${h.clusterSize}`,
      );
    }
    if (offset + bytes > file.size) {
      throw new CorruptImageError(
        `${path}: qcow2 ${what} at offset ${offset} (+${bytes} bytes) lies beyond the end of the file (${file.size} bytes)`,
      );
    }
    for (const other of spans) {
      if (offset < other.end && other.start < offset + bytes) {
        throw new CorruptImageError(`${path}: qcow2 ${what} at offset ${offset} overlaps the ${other.what}`);
      }
    }
    spans.push({ what, start: offset, end: offset + bytes });
  };
  table("L1 table", h.l1TableOffset, l1Bytes);
  if (h.refcountTableClusters === 0) {
    throw new CorruptImageError(`${path}: qcow2 refcount table is empty (refcount_table_clusters is 0)`);
  }
  table("refcount table", h.refcountTableOffset, refcountBytes);
  // The snapshot table's length depends on its entries; only its start is checked here (we never read it).
  if (h.snapshotCount > 0) table("snapshot table", h.snapshotsOffset, 1);
}

/** Where the L1 and refcount tables sit, for checking that L2 tables do not overlap them. */
export function metadataSpans(h: Qcow2Header): readonly Span[] {
  return [
    { what: "header", start: 0, end: h.clusterSize },
    { what: "L1 table", start: h.l1TableOffset, end: h.l1TableOffset + h.l1Entries * 8 },
    {
      what: "refcount table",
      start: h.refcountTableOffset,
      end: h.refcountTableOffset + h.refcountTableClusters * h.clusterSize,
    },
  ];
}
