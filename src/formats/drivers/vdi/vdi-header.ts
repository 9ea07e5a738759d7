/**
 * The VDI pre-header and header (VirtualBox's VDICore.h, version 1.1): parsing with every field checked
 * before anything is sized by it, and encoding for the writer.
 *
 * Layout, all little-endian: a 64-byte text "for eyes only", the signature 0xbeda107f, the version
 * (major << 16 | minor), then the version 1.1 header, which starts with its own size (0x180, or 0x190 when it
 * carries the LCHS geometry VirtualBox adds). The block map (one 32-bit entry per block) and the data area
 * live wherever the header's offsets say.
 */
import { lazyCrypto } from "../../../util/lazy-builtins.js";
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LIMITS, checkRange } from "../../limits.js";

export const VDI_SIGNATURE = 0xbeda107f;
export const VDI_SIGNATURE_OFFSET = 64;
/** Version 1.1, the only one VirtualBox has written since 2008 and the only one qemu reads. */
export const VDI_VERSION_1_1 = 0x00010001;

export const VDI_SECTOR_SIZE = 512;
/** What VirtualBox and qemu create; qemu refuses to open anything else. */
export const VDI_DEFAULT_BLOCK_SIZE = 2 ** 20;

/** Block map entry of a block never written: reads as zeros in an image without a parent. */
export const VDI_BLOCK_UNALLOCATED = 0xffffffff;
/** Block map entry of a block discarded or known to be zero ("VDI_IMAGE_BLOCK_ZERO"). */
export const VDI_BLOCK_ZERO = 0xfffffffe;

const PRE_HEADER_BYTES = 72;
/** Size of the version 1.1 header without the LCHS geometry; anything smaller is not a 1.1 header. */
const HEADER_V1_BYTES = 0x180;
/** Size of the version 1.1 header with the LCHS geometry, as VirtualBox writes it. */
const HEADER_V1_PLUS_BYTES = 0x190;
/** Bytes of the file the header occupies at most as far as this driver is concerned. */
export const VDI_HEADER_AREA = VDI_SECTOR_SIZE;

/**
 * Block sizes accepted when reading. VirtualBox allows any power of two; qemu only 1 MiB. The ceiling keeps
 * every file offset computed from a block index a safe integer (2^23 blocks at most × 2^29 stride < 2^53).
 */
const MIN_BLOCK_SIZE = VDI_SECTOR_SIZE;
const MAX_BLOCK_SIZE = 256 * 2 ** 20;
/** Most blocks a block map may describe: its bytes stay under the engine's table cap. */
export const VDI_MAX_BLOCKS = LIMITS.maxTableBytes / 4;

/** Field offsets from the start of the file. */
const FIELD = {
  signature: 64,
  version: 68,
  headerSize: 72,
  imageType: 76,
  imageFlags: 80,
  comment: 84,
  blockMapOffset: 340,
  dataOffset: 344,
  legacyCylinders: 348,
  legacyHeads: 352,
  legacySectors: 356,
  sectorSize: 360,
  unusedTranslation: 364,
  diskSize: 368,
  blockSize: 376,
  blockExtra: 380,
  blocksInImage: 384,
  blocksAllocated: 388,
  uuidImage: 392,
  uuidModification: 408,
  uuidParent: 424,
  uuidParentModification: 440,
  lchsCylinders: 456,
  lchsHeads: 460,
  lchsSectors: 464,
  lchsSectorSize: 468,
} as const;

export const VDI_IMAGE_TYPE = { dynamic: 1, static: 2, undo: 3, differencing: 4 } as const;
export type VdiImageKind = "dynamic" | "static";

export interface VdiHeader {
  readonly kind: VdiImageKind;
  readonly headerSize: number;
  readonly imageFlags: number;
  readonly blockMapOffset: number;
  readonly dataOffset: number;
  /** Guest-visible size in bytes, exactly as stored (qemu rounds an odd one up to a sector; we do not: see
   * unalignedSizeWarning in vdi-source.ts). */
  readonly diskSize: number;
  readonly blockSize: number;
  /**
   * Bytes of per-block private data before each block's data. VirtualBox always writes 0 but honours other values
   * (as GRUB's reader does); qemu and 7-Zip ignore the field. We follow VirtualBox, the format's owner.
   */
  readonly blockExtra: number;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
  /** Canonical (RFC 4122 text order) forms of the image's UUIDs. */
  readonly uuid: string;
  readonly modificationUuid: string;
}

/** Bytes from one block's start in the data area to the next's. */
export function blockStride(header: Pick<VdiHeader, "blockSize" | "blockExtra">): number {
  return header.blockSize + header.blockExtra;
}

/** True when the pre-header at the start of `head` carries the VDI signature. */
export function hasVdiSignature(head: Buffer): boolean {
  return head.length >= PRE_HEADER_BYTES && head.readUInt32LE(VDI_SIGNATURE_OFFSET) === VDI_SIGNATURE;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function isNullUuid(buf: Buffer, at: number): boolean {
  for (let i = at; i < at + 16; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * VirtualBox stores UUIDs in its in-memory layout: the first three fields little-endian (as Windows GUIDs do),
 * the last eight bytes as they are. Swapping those three fields converts either way.
 */
function swapUuidFields(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32BE(bytes.readUInt32LE(0), 0);
  out.writeUInt16BE(bytes.readUInt16LE(4), 4);
  out.writeUInt16BE(bytes.readUInt16LE(6), 6);
  return out;
}

function formatUuid(stored: Buffer): string {
  const hex = swapUuidFields(stored).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A fresh random UUID in VirtualBox's stored layout. */
function newStoredUuid(): Buffer {
  return swapUuidFields(Buffer.from(lazyCrypto().randomUUID().replaceAll("-", ""), "hex"));
}

/** Reads and validates the pre-header and header; refuses what this driver cannot read faithfully. */
export async function readVdiHeader(file: ImageInput): Promise<VdiHeader> {
  const path = file.path;
  if (file.size < PRE_HEADER_BYTES) {
    throw new CorruptImageError(`${path}: ${file.size} bytes is too small to hold a VDI pre-header`);
  }
  const buf = await file.readPadded(0, VDI_HEADER_AREA);
  const signature = buf.readUInt32LE(FIELD.signature);
  if (signature !== VDI_SIGNATURE) {
    throw new CorruptImageError(`${path}: not a VDI image (signature 0x${signature.toString(16)} at offset 64)`);
  }
  const version = buf.readUInt32LE(FIELD.version);
  if (version !== VDI_VERSION_1_1) {
    throw new UnsupportedFeatureError(
      `${path}: VDI version ${version >>> 16}.${version & 0xffff} is not supported (only 1.1, what VirtualBox writes)`,
    );
  }
  if (file.size < PRE_HEADER_BYTES + HEADER_V1_BYTES) {
    throw new CorruptImageError(`${path}: the file (${file.size} bytes) ends inside the VDI header`);
  }
  const headerSize = checkRange(
    path,
    "VDI header size",
    buf.readUInt32LE(FIELD.headerSize),
    HEADER_V1_BYTES,
    LIMITS.maxHeaderBytes,
  );

  const imageType = buf.readUInt32LE(FIELD.imageType);
  let kind: VdiImageKind;
  if (imageType === VDI_IMAGE_TYPE.dynamic) kind = "dynamic";
  else if (imageType === VDI_IMAGE_TYPE.static) kind = "static";
  else if (imageType === VDI_IMAGE_TYPE.undo || imageType === VDI_IMAGE_TYPE.differencing) {
    throw new UnsupportedFeatureError(
      `${path}: VDI ${imageType === VDI_IMAGE_TYPE.undo ? "undo" : "differencing"} images (type ${imageType}) ` +
        "depend on a parent image and are not supported; merge the snapshot chain in VirtualBox first",
    );
  } else {
    throw new CorruptImageError(`${path}: unknown VDI image type ${imageType}`);
  }
  // A parent UUID means this image only holds the differences to another one, whatever its type claims.
  if (!isNullUuid(buf, FIELD.uuidParent) || !isNullUuid(buf, FIELD.uuidParentModification)) {
    throw new UnsupportedFeatureError(
      `${path}: this VDI image names a parent image (non-null parent UUID); differencing images are not supported`,
    );
  }

  const sectorSize = buf.readUInt32LE(FIELD.sectorSize);
  if (sectorSize !== VDI_SECTOR_SIZE) {
    throw new UnsupportedFeatureError(`${path}: VDI sector size ${sectorSize} is not supported (only 512)`);
  }
  if (headerSize >= HEADER_V1_PLUS_BYTES) {
    const lchsSectorSize = buf.readUInt32LE(FIELD.lchsSectorSize);
    // VirtualBox refuses these images too; 0 is left by tools that never filled the LCHS geometry in.
    if (lchsSectorSize !== VDI_SECTOR_SIZE && lchsSectorSize !== 0) {
      throw new UnsupportedFeatureError(`${path}: VDI LCHS sector size ${lchsSectorSize} is not supported`);
    }
  }

  const blockSize = buf.readUInt32LE(FIELD.blockSize);
  if (!isPowerOfTwo(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw new CorruptImageError(
      `${path}: VDI block size ${blockSize} is not a power of two between ${MIN_BLOCK_SIZE} and ${MAX_BLOCK_SIZE}`,
    );
  }
  const blockExtra = buf.readUInt32LE(FIELD.blockExtra);
  if (blockExtra !== 0 && (!isPowerOfTwo(blockExtra) || blockExtra > MAX_BLOCK_SIZE)) {
    throw new CorruptImageError(`${path}: VDI per-block extra size ${blockExtra} is not 0 or a power of two`);
  }
  const diskSize = checkRange(path, "VDI disk size", buf.readBigUInt64LE(FIELD.diskSize), 0, LIMITS.maxVirtualSize);
  const blocksInImage = checkRange(
    path,
    "VDI block count (bounded so the block map stays under the table size limit)",
    buf.readUInt32LE(FIELD.blocksInImage),
    0,
    VDI_MAX_BLOCKS,
  );
  if (diskSize > blocksInImage * blockSize) {
    throw new CorruptImageError(
      `${path}: VDI disk size ${diskSize} exceeds what its ${blocksInImage} blocks of ${blockSize} bytes hold`,
    );
  }
  const blocksAllocated = checkRange(
    path,
    "VDI allocated block count",
    buf.readUInt32LE(FIELD.blocksAllocated),
    0,
    blocksInImage,
  );

  const blockMapOffset = buf.readUInt32LE(FIELD.blockMapOffset);
  const dataOffset = buf.readUInt32LE(FIELD.dataOffset);
  if (blockMapOffset < PRE_HEADER_BYTES + HEADER_V1_BYTES) {
    throw new CorruptImageError(`${path}: VDI block map offset ${blockMapOffset} lies inside the header`);
  }
  if (dataOffset < blockMapOffset + blocksInImage * 4) {
    throw new CorruptImageError(
      `${path}: VDI data area (offset ${dataOffset}) overlaps the block map ` +
        `(offset ${blockMapOffset}, ${blocksInImage * 4} bytes)`,
    );
  }

  return {
    kind,
    headerSize,
    imageFlags: buf.readUInt32LE(FIELD.imageFlags),
    blockMapOffset,
    dataOffset,
    diskSize,
    blockSize,
    blockExtra,
    blocksInImage,
    blocksAllocated,
    uuid: formatUuid(buf.subarray(FIELD.uuidImage, FIELD.uuidImage + 16)),
    modificationUuid: formatUuid(buf.subarray(FIELD.uuidModification, FIELD.uuidModification + 16)),
  };
}

/** Text VirtualBox shows nobody; tools identify VDI by the signature, so it names who wrote the image. */
const WRITER_TEXT = "<<< chromogenic VirtualBox Disk Image >>>\n";

export interface VdiHeaderFields {
  readonly kind: VdiImageKind;
  readonly blockMapOffset: number;
  readonly dataOffset: number;
  readonly diskSize: number;
  readonly blockSize: number;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
}

/**
 * Encodes a version 1.1 header in the form VirtualBox itself writes (0x190 bytes, with the LCHS geometry marked
 * "not calculated"), padded to one sector. Both UUIDs are fresh: VirtualBox refuses a null one.
 */
export function encodeVdiHeader(fields: VdiHeaderFields): Buffer {
  const buf = Buffer.alloc(VDI_HEADER_AREA);
  buf.write(WRITER_TEXT, 0, "latin1");
  buf.writeUInt32LE(VDI_SIGNATURE, FIELD.signature);
  buf.writeUInt32LE(VDI_VERSION_1_1, FIELD.version);
  buf.writeUInt32LE(HEADER_V1_PLUS_BYTES, FIELD.headerSize);
  buf.writeUInt32LE(fields.kind === "static" ? VDI_IMAGE_TYPE.static : VDI_IMAGE_TYPE.dynamic, FIELD.imageType);
  buf.writeUInt32LE(fields.blockMapOffset, FIELD.blockMapOffset);
  buf.writeUInt32LE(fields.dataOffset, FIELD.dataOffset);
  buf.writeUInt32LE(VDI_SECTOR_SIZE, FIELD.sectorSize);
  buf.writeBigUInt64LE(BigInt(fields.diskSize), FIELD.diskSize);
  buf.writeUInt32LE(fields.blockSize, FIELD.blockSize);
  buf.writeUInt32LE(fields.blocksInImage, FIELD.blocksInImage);
  buf.writeUInt32LE(fields.blocksAllocated, FIELD.blocksAllocated);
  newStoredUuid().copy(buf, FIELD.uuidImage);
  newStoredUuid().copy(buf, FIELD.uuidModification);
  buf.writeUInt32LE(VDI_SECTOR_SIZE, FIELD.lchsSectorSize);
  return buf;
}
