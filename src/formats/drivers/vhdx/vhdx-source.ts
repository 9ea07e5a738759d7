/**
 * A VHDX opened for reading (fixed and dynamic; differencing files and files whose log needs replaying are
 * refused). Opening reads the header section, the metadata and the BAT once; reads then map ranges through the
 * BAT and issue one positional read per stretch of blocks that is contiguous in the file.
 */
import type { Extent, ImageDetails, ImageSource } from "../../types.js";
import { buildOn, type ImageInput } from "../../inputs/image-input.js";
import { requireRandomAccess } from "../../inputs/require-random-access.js";
import { checkDiskRange, readDestination, readFileRuns } from "../../engine/source-ranges.js";
import { readVhdxHeaderSection, type VhdxHeaderSection } from "./vhdx-header-section.js";
import { readVhdxMetadata, type VhdxMetadata } from "./vhdx-metadata.js";
import { VhdxBlockMap } from "./vhdx-block-map.js";

export class VhdxSource implements ImageSource {
  readonly format = "vhdx";
  readonly virtualSize: number;

  private constructor(
    private readonly file: ImageInput,
    private readonly section: VhdxHeaderSection,
    private readonly meta: VhdxMetadata,
    private readonly map: VhdxBlockMap,
  ) {
    this.virtualSize = meta.virtualSize;
  }

  static async open(input: ImageInput): Promise<VhdxSource> {
    return buildOn(input, async (file) => {
      requireRandomAccess(file, "vhdx");
      const section = await readVhdxHeaderSection(file);
      const meta = await readVhdxMetadata(file, section.metadata);
      const map = await VhdxBlockMap.load(file, section.bat, meta);
      return new VhdxSource(file, section, meta, map);
    });
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    const out = readDestination(this.file.path, length, into);
    await readFileRuns(this.file, this.map.runs(offset, length), out, offset, "VHDX block data");
    return out;
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    for (const run of this.map.runs(offset, length)) yield { offset: run.offset, length: run.length, kind: run.kind };
  }

  async details(): Promise<ImageDetails> {
    const { header } = this.section;
    const { counts } = this.map;
    return {
      format: this.format,
      virtualSize: this.virtualSize,
      actualSize: this.file.allocatedSize,
      allocatedBytes: [...this.map.runs(0, this.virtualSize)]
        .filter((r) => r.kind === "data")
        .reduce((sum, r) => sum + r.length, 0),
      clusterSize: this.meta.blockSize,
      formatSpecific: {
        diskType: this.meta.leaveBlocksAllocated ? "fixed" : "dynamic",
        creator: this.section.creator,
        blockSize: this.meta.blockSize,
        logicalSectorSize: this.meta.logicalSectorSize,
        physicalSectorSize: this.meta.physicalSectorSize,
        virtualDiskId: this.meta.virtualDiskId,
        chunkRatio: this.map.chunkRatio,
        blocksPresent: counts.present,
        blocksZero: counts.zero,
        blocksNotPresent: counts.absent,
        currentHeader: header.copy,
        headerSequence: header.sequenceNumber.toString(),
        regionTableCopy: this.section.regionTableCopy,
        dataWriteGuid: header.dataWriteGuid,
        logLength: header.logLength,
      },
      ...(this.section.warnings.length ? { warnings: this.section.warnings } : {}),
    };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
