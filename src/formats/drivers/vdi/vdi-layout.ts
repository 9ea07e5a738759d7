/**
 * Where a new VDI image puts its parts, all known from the virtual size before any data arrives: the header in
 * the first sector, the block map right after it (as qemu places it), the data area from the next 1 MiB
 * boundary (as VirtualBox aligns it) so every block sits on a 1 MiB boundary of the host file.
 */
import { UsageError } from "../../errors.js";
import {
  VDI_DEFAULT_BLOCK_SIZE,
  VDI_HEADER_AREA,
  VDI_MAX_BLOCKS,
  VDI_SECTOR_SIZE,
  encodeVdiHeader,
  type VdiImageKind,
} from "./vdi-header.js";

/** Alignment of the data area in the file: VirtualBox's VDI_DATA_ALIGN. */
const DATA_ALIGNMENT = 2 ** 20;

export interface VdiLayout {
  readonly kind: VdiImageKind;
  /** Guest-visible size, stored exactly (not rounded to a sector or a block). */
  readonly diskSize: number;
  readonly blockSize: number;
  /** Blocks covering the disk; the last one is padded with zeros when the size is not a multiple of a block. */
  readonly blocks: number;
  readonly blockMapOffset: number;
  /** The block map's entries rounded up to whole sectors. */
  readonly blockMapBytes: number;
  readonly dataOffset: number;
}

export function planVdiLayout(kind: VdiImageKind, diskSize: number): VdiLayout {
  const blockSize = VDI_DEFAULT_BLOCK_SIZE;
  const blocks = Math.ceil(diskSize / blockSize);
  // The reader refuses block maps above the engine's table cap; never write an image it would refuse.
  if (blocks > VDI_MAX_BLOCKS) {
    throw new UsageError(
      `vdi: a ${diskSize}-byte disk needs ${blocks} blocks of 1 MiB; at most ${VDI_MAX_BLOCKS} ` +
        `(${(VDI_MAX_BLOCKS * blockSize) / 2 ** 40} TiB) are supported`,
    );
  }
  const blockMapOffset = VDI_HEADER_AREA;
  const blockMapBytes = Math.ceil((blocks * 4) / VDI_SECTOR_SIZE) * VDI_SECTOR_SIZE;
  const dataOffset = Math.ceil((blockMapOffset + blockMapBytes) / DATA_ALIGNMENT) * DATA_ALIGNMENT;
  return { kind, diskSize, blockSize, blocks, blockMapOffset, blockMapBytes, dataOffset };
}

/** Offset in the file of the block stored at data-area index `index`. */
export function storedBlockOffset(layout: VdiLayout, index: number): number {
  return layout.dataOffset + index * layout.blockSize;
}

/** A block map with every entry "not allocated" (0xffffffff), ready to be filled in as blocks are stored. */
export function emptyBlockMap(layout: VdiLayout): Buffer {
  return Buffer.alloc(layout.blockMapBytes).fill(0xff, 0, layout.blocks * 4);
}

/** A block map in which block i is stored at index i: a static image. */
export function identityBlockMap(layout: VdiLayout): Buffer {
  const map = Buffer.alloc(layout.blockMapBytes);
  for (let i = 0; i < layout.blocks; i++) map.writeUInt32LE(i, i * 4);
  return map;
}

/**
 * Header and block map, back to back: one buffer, one write. The gap up to the data area is not included, so a
 * seekable output leaves it a hole.
 */
export function encodeVdiMetadata(layout: VdiLayout, blockMap: Buffer, blocksAllocated: number): Buffer {
  const header = encodeVdiHeader({
    kind: layout.kind,
    blockMapOffset: layout.blockMapOffset,
    dataOffset: layout.dataOffset,
    diskSize: layout.diskSize,
    blockSize: layout.blockSize,
    blocksInImage: layout.blocks,
    blocksAllocated,
  });
  return Buffer.concat([header, blockMap]);
}
