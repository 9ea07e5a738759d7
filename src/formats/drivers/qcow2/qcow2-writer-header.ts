/**
 * Encodes the header cluster of a new qcow2 image: version 3 (compat 1.1), no backing file, no encryption,
 * no snapshots, 16-bit refcounts, and the compression_type field (zstd also sets its incompatible bit, so
 * readers that predate zstd refuse the image instead of misreading it).
 */
import { INCOMPATIBLE, QCOW2_MAGIC } from "./qcow2-header.js";
import type { Qcow2OutputCompression } from "./qcow2-writer-options.js";

export interface Qcow2HeaderFields {
  readonly clusterSize: number;
  readonly clusterBits: number;
  /** Virtual size as stored: qemu reads it in 512-byte sectors, so the caller rounds it up to one. */
  readonly virtualSize: number;
  readonly compression: Qcow2OutputCompression;
  readonly l1Entries: number;
  readonly l1TableOffset: number;
  readonly refcountTableOffset: number;
  readonly refcountTableClusters: number;
}

const VERSION = 3;
/** log2(16): refcount entries are 16 bits wide. */
const REFCOUNT_ORDER = 4;
/** The 104 fixed bytes of a version 3 header, the 1-byte compression_type, padded to a multiple of 8 (as qemu). */
const HEADER_LENGTH = 112;
const COMPRESSION_TYPE_ZSTD = 1;

/** The header cluster, whole: header, then an empty header-extension list (the zeros that follow). */
export function encodeQcow2Header(fields: Qcow2HeaderFields): Buffer {
  const header = Buffer.alloc(fields.clusterSize);
  const zstd = fields.compression === "zstd";
  header.writeUInt32BE(QCOW2_MAGIC, 0);
  header.writeUInt32BE(VERSION, 4);
  // 8..19: backing file offset and length stay 0.
  header.writeUInt32BE(fields.clusterBits, 20);
  header.writeBigUInt64BE(BigInt(fields.virtualSize), 24);
  // 32..35: crypt_method 0.
  header.writeUInt32BE(fields.l1Entries, 36);
  header.writeBigUInt64BE(BigInt(fields.l1TableOffset), 40);
  header.writeBigUInt64BE(BigInt(fields.refcountTableOffset), 48);
  header.writeUInt32BE(fields.refcountTableClusters, 56);
  // 60..71: no snapshots.
  header.writeBigUInt64BE(zstd ? INCOMPATIBLE.compressionType : 0n, 72);
  // 80..95: no compatible or autoclear features.
  header.writeUInt32BE(REFCOUNT_ORDER, 96);
  header.writeUInt32BE(HEADER_LENGTH, 100);
  header.writeUInt8(zstd ? COMPRESSION_TYPE_ZSTD : 0, 104);
  // From HEADER_LENGTH on: an extension of type 0 (end of extensions), i.e. zeros already there.
  return header;
}
