/**
 * A VDI image (static or dynamic, version 1.1) opened for reading. The block map is loaded and validated at
 * open; reads then map each block of the range to the file and issue one positional read per stretch of blocks
 * that lie back to back in the file. The allocation map is the block map refined by the host file's holes.
 * Nothing changes after open, so reads may run concurrently.
 */
import { buildOn, type ImageInput } from "../../inputs/image-input.js";
import { requireRandomAccess } from "../../inputs/require-random-access.js";
import { fileExtents, type HoleFinder } from "../../io/seek-data.js";
import { ExtentMerger, checkDiskRange, readDestination, settleAll } from "../../engine/source-ranges.js";
import type { Extent, ImageDetails, ImageSource } from "../../types.js";
import { VdiBlockMap } from "./vdi-block-map.js";
import { VDI_SECTOR_SIZE, readVdiHeader, type VdiHeader } from "./vdi-header.js";

export class VdiSource implements ImageSource {
  readonly format = "vdi";
  readonly virtualSize: number;
  /** The host file's holes (SEEK_DATA/SEEK_HOLE), or null where the filesystem cannot tell. */
  private readonly holes: HoleFinder | null;

  private constructor(
    private readonly file: ImageInput,
    readonly header: VdiHeader,
    private readonly map: VdiBlockMap,
  ) {
    this.virtualSize = header.diskSize;
    this.holes = file.holes();
  }

  static async open(input: ImageInput): Promise<VdiSource> {
    return buildOn(input, async (file) => {
      requireRandomAccess(file, "vdi");
      const header = await readVdiHeader(file);
      const map = await VdiBlockMap.load(file, header);
      return new VdiSource(file, header, map);
    });
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    const out = readDestination(this.file.path, length, into);
    const blockSize = this.header.blockSize;
    const end = offset + length;
    const reads: Promise<Buffer>[] = [];
    let pos = offset;
    while (pos < end) {
      const block = Math.floor(pos / blockSize);
      const within = pos - block * blockSize;
      const fileStart = this.map.fileOffset(block);
      // Extend the stretch over following blocks that continue it: stored right after it in the file, or
      // (for holes) also not stored, so one read or one fill serves them all.
      let stretchEnd = Math.min(end, (block + 1) * blockSize);
      let next = block + 1;
      while (stretchEnd < end) {
        const nextOffset = this.map.fileOffset(next);
        const continues =
          fileStart < 0 ? nextOffset < 0 : nextOffset === fileStart - within + (next - block) * blockSize;
        if (!continues) break;
        stretchEnd = Math.min(end, (next + 1) * blockSize);
        next++;
      }
      const slice = out.subarray(pos - offset, stretchEnd - offset);
      if (fileStart < 0) slice.fill(0);
      else reads.push(this.file.readExact(fileStart + within, slice.length, slice, "VDI block data"));
      pos = stretchEnd;
    }
    await settleAll(reads);
    return out;
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    // Merges what the block map and the host file's holes say piece by piece into maximal runs of one kind.
    const merger = new ExtentMerger();
    for (const piece of this.pieces(offset, offset + length)) yield* merger.add(piece.offset, piece.length, piece.kind);
    yield* merger.flush();
  }

  /** The allocation map of [start, end) in stretches: a run of blocks of one kind, stored ones split by holes. */
  private *pieces(start: number, end: number): Generator<Extent> {
    const blockSize = this.header.blockSize;
    let pos = start;
    while (pos < end) {
      const block = Math.floor(pos / blockSize);
      const kind = this.map.kind(block);
      const fileStart = this.map.fileOffset(block);
      const within = pos - block * blockSize;
      let next = block + 1;
      // Stored blocks join the stretch only when they follow in the file too, so the stretch maps to one file range.
      while (
        next * blockSize < end &&
        this.map.kind(next) === kind &&
        (fileStart < 0 || this.map.fileOffset(next) === fileStart - within + (next - block) * blockSize)
      ) {
        next++;
      }
      const stretchEnd = Math.min(end, next * blockSize);
      if (fileStart < 0) {
        yield { offset: pos, length: stretchEnd - pos, kind };
      } else {
        // A stored stretch is split where the host file has holes: a static image made by qemu, or sized up
        // front, keeps unwritten blocks as holes, and reporting them as zeros spares the convert pipeline
        // reading and scanning them (qemu-img does the same).
        yield* fileExtents(this.holes, fileStart + within, pos, stretchEnd - pos, "zero");
      }
      pos = stretchEnd;
    }
  }

  async details(): Promise<ImageDetails> {
    let allocatedBytes = 0;
    for await (const e of this.extents()) if (e.kind === "data") allocatedBytes += e.length;
    const h = this.header;
    return {
      format: this.format,
      virtualSize: this.virtualSize,
      actualSize: this.file.allocatedSize,
      allocatedBytes,
      clusterSize: h.blockSize,
      formatSpecific: {
        imageType: h.kind,
        version: "1.1",
        blocksInImage: h.blocksInImage,
        blocksAllocated: h.blocksAllocated,
        uuid: h.uuid,
        modificationUuid: h.modificationUuid,
        ...(h.blockExtra ? { blockExtra: h.blockExtra } : {}),
      },
      ...(h.diskSize % VDI_SECTOR_SIZE ? { warnings: [unalignedSizeWarning(h.diskSize)] } : {}),
    };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/**
 * Where qemu-img reads the same file differently, on purpose: a disk size that is not a whole number of sectors
 * (VBoxManage convertfromraw writes the raw file's exact length) is read as exactly that many bytes, as the
 * header states and VirtualBox sizes the disk; qemu-img rounds it up to a whole sector, adding bytes from past the
 * disk's end.
 */
function unalignedSizeWarning(diskSize: number): string {
  const rounded = Math.ceil(diskSize / VDI_SECTOR_SIZE) * VDI_SECTOR_SIZE;
  return (
    `the disk size ${diskSize} is not a whole number of ${VDI_SECTOR_SIZE}-byte sectors: chromogenic reads exactly ` +
    `${diskSize} bytes, as the header states; qemu-img rounds it up to ${rounded}`
  );
}
