/**
 * A hosted sparse extent (a "KDMV" file): its header, its embedded descriptor when it has one, and its data
 * through the grain directory. Plain grains are read with one positional read per host-contiguous stretch;
 * compressed grains (streamOptimized) go through CompressedGrainReader. For a header saying GD_AT_END the
 * footer at the end of the file supplies the real grain directory offset.
 */
import { CorruptImageError } from "../../errors.js";
import { ExtentMerger, settleAll } from "../../engine/source-ranges.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { CompressedGrainReader, type CompressedPiece } from "./vmdk-compressed-grains.js";
import { descriptorText } from "./vmdk-descriptor.js";
import type { ExtentRun, VmdkExtent } from "./vmdk-extent.js";
import { GrainDirectory } from "./vmdk-grain-directory.js";
import { hasMarkers, isCompressed, parseSparseHeader, SECTOR, type SparseHeader } from "./vmdk-sparse-header.js";
import { readStreamFooter } from "./vmdk-stream-footer.js";

export class SparseExtent implements VmdkExtent {
  readonly length: number;
  private readonly compressed: CompressedGrainReader | undefined;

  private constructor(
    readonly file: ImageInput,
    /** The header in effect: the footer's for a streamOptimized file with GD_AT_END. */
    readonly header: SparseHeader,
    readonly directory: GrainDirectory,
    /** The embedded descriptor's text, if the header points at one. */
    readonly descriptor: string | undefined,
  ) {
    this.length = header.capacity * SECTOR;
    this.compressed = isCompressed(header) ? new CompressedGrainReader(file, directory.geometry.grainSize) : undefined;
  }

  /** Reads the header (and footer), the embedded descriptor and the grain directory of `file`. */
  static async open(file: ImageInput): Promise<SparseExtent> {
    const head = await file.readExact(0, SECTOR, undefined, "sparse extent header");
    let header = parseSparseHeader(head, file.path);
    if (header.gdAtEnd) {
      if (!hasMarkers(header)) {
        throw new CorruptImageError(`${file.path}: grain directory "at end" is only valid in a streamOptimized file`);
      }
      header = { ...(await readStreamFooter(file, header)), descriptorOffset: header.descriptorOffset };
    }
    if (header.gdOffset === 0) throw new CorruptImageError(`${file.path}: the header has no grain directory offset`);
    let descriptor: string | undefined;
    if (header.descriptorOffset > 0 && header.descriptorSectors > 0) {
      const bytes = await file.readExact(
        header.descriptorOffset * SECTOR,
        header.descriptorSectors * SECTOR,
        undefined,
        "embedded descriptor",
      );
      descriptor = descriptorText(bytes, file.path);
    }
    const directory = await GrainDirectory.load(file, header, header.gdOffset);
    return new SparseExtent(file, header, directory, descriptor);
  }

  async read(offset: number, dest: Buffer): Promise<void> {
    const runs = await this.directory.map(offset, dest.length);
    const jobs: Promise<unknown>[] = [];
    const pieces: CompressedPiece[] = [];
    for (const run of runs) {
      const target = dest.subarray(run.offset - offset, run.offset - offset + run.length);
      switch (run.kind) {
        case "unallocated":
        case "zero":
          target.fill(0);
          break;
        case "data":
          // A last grain cut short by the end of the file reads as zeros beyond it, as qemu reads it.
          jobs.push(this.file.readPadded(run.hostOffset, run.length, target));
          break;
        case "compressed":
          pieces.push(run);
          break;
      }
    }
    if (pieces.length > 0) jobs.push(this.compressed!.read(pieces, dest, offset));
    await settleAll(jobs);
  }

  async runs(offset: number, length: number): Promise<ExtentRun[]> {
    const merger = new ExtentMerger();
    const out: ExtentRun[] = [];
    for (const run of await this.directory.map(offset, length)) {
      out.push(...merger.add(run.offset, run.length, run.kind === "compressed" ? "data" : run.kind));
    }
    out.push(...merger.flush());
    return out;
  }

  async close(): Promise<void> {
    this.directory.clear();
    this.compressed?.clear();
    await this.file.close();
  }
}
