/**
 * A VHDX opened for reading (fixed and dynamic; differencing files and files whose log needs replaying are
 * refused). Opening reads the header section, the metadata and the BAT once; reads then map ranges through the
 * BAT and issue one positional read per stretch of blocks that is contiguous in the file.
 */
import type { Extent, ImageDetails, ImageSource, OpenOptions } from "../../types.js";
import { UsageError } from "../../errors.js";
import { InputFile } from "../../io/input-file.js";
import { readVhdxHeaderSection, type VhdxHeaderSection } from "./vhdx-header-section.js";
import { readVhdxMetadata, type VhdxMetadata } from "./vhdx-metadata.js";
import { VhdxBlockMap } from "./vhdx-block-map.js";

export class VhdxSource implements ImageSource {
  readonly format = "vhdx";
  readonly virtualSize: number;

  private constructor(
    private readonly file: InputFile,
    private readonly section: VhdxHeaderSection,
    private readonly meta: VhdxMetadata,
    private readonly map: VhdxBlockMap,
  ) {
    this.virtualSize = meta.virtualSize;
  }

  static async open(path: string, options: OpenOptions = {}): Promise<VhdxSource> {
    const unknown = Object.keys(options.driverOptions ?? {});
    if (unknown.length) throw new UsageError(`vhdx: unknown open option(s) ${unknown.join(", ")} (vhdx takes none)`);
    const file = await InputFile.open(path);
    try {
      const section = await readVhdxHeaderSection(file);
      const meta = await readVhdxMetadata(file, section.metadata);
      const map = await VhdxBlockMap.load(file, section.bat, meta);
      return new VhdxSource(file, section, meta, map);
    } catch (e) {
      await file.close().catch(() => undefined);
      throw e;
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkRange(offset, length);
    if (into && into.length < length) {
      throw new RangeError(`${this.file.path}: buffer of ${into.length} bytes cannot hold a ${length}-byte read`);
    }
    const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    const jobs: Promise<unknown>[] = [];
    for (const run of this.map.runs(offset, length)) {
      const dest = out.subarray(run.offset - offset, run.offset - offset + run.length);
      if (run.kind === "data") jobs.push(this.file.readExact(run.fileOffset, run.length, dest, "VHDX block data"));
      else dest.fill(0);
    }
    // Wait for every read, not just the first failure, so nothing writes into `out` after we return.
    const results = await Promise.allSettled(jobs);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return out;
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    this.checkRange(offset, length);
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
    };
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeError(`${this.file.path}: invalid range ${offset}+${length}`);
    }
    if (offset + length > this.virtualSize) {
      throw new RangeError(
        `${this.file.path}: range ${offset}+${length} lies beyond the end of the disk (${this.virtualSize} bytes)`,
      );
    }
  }
}
