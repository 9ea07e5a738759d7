/**
 * Writes a monolithicSparse VMDK: one growable file with the layout qemu-img and VMware Workstation use.
 *
 *   sector 0            header (version 1, redundant grain tables)
 *   sectors 1..20       embedded descriptor
 *   sector 21…          redundant grain directory, then the redundant grain tables, all preallocated
 *   …                   grain directory, then the grain tables, all preallocated
 *   overhead…           grains, appended in disk order (the first rounded up to a whole grain)
 *
 * Every table's place is fixed up front, so the header, descriptor and both directories are written at once;
 * a grain table (and its redundant copy) is written as soon as the convert pipeline has moved past its range,
 * so only one table is ever in memory. Tables with no grains stay holes, reading as zeros. Grains that are all
 * zeros are not stored (entry 0: reads as zeros, as there is no parent disk).
 */
import { UsageError } from "../../errors.js";
import type { OutputFile } from "../../io/output-file.js";
import type { ImageTarget } from "../../types.js";
import type { VmdkWriterSettings } from "./vmdk-writer-settings.js";
import { DESCRIPTOR_SECTORS, descriptorSectors, formatDescriptor } from "./vmdk-descriptor-writer.js";
import { UnitTarget, nonZeroUnitRuns } from "../../engine/unit-assembler.js";
import {
  COMPRESSION_NONE,
  FLAG_REDUNDANT_GRAIN_TABLE,
  FLAG_VALID_NEWLINE_DETECTOR,
  SECTOR,
  encodeSparseHeader,
  sparseGeometry,
} from "./vmdk-sparse-header.js";

/** 64 KiB grains and 512-entry tables: what every VMware product and qemu write. */
export const GRAIN_SECTORS = 128;
export const GTES_PER_GT = 512;
/** Grain table entries are 32-bit sector numbers, so a sparse file cannot reach past 2 TiB. */
const MAX_FILE_SECTORS = 2 ** 32 - 1;

interface SparseLayout {
  readonly capacity: number;
  readonly gdSectors: number;
  readonly gtSectors: number;
  readonly gtCount: number;
  readonly rgdOffset: number;
  readonly gdOffset: number;
  readonly overhead: number;
}

function layoutFor(virtualSize: number): SparseLayout {
  const capacity = Math.ceil(virtualSize / SECTOR);
  const { gtCount, gtBytes } = sparseGeometry({ capacity, grainSectors: GRAIN_SECTORS, gtesPerGt: GTES_PER_GT });
  const gdSectors = Math.ceil((gtCount * 4) / SECTOR);
  const gtSectors = Math.ceil(gtBytes / SECTOR);
  const rgdOffset = 1 + DESCRIPTOR_SECTORS;
  const gdOffset = rgdOffset + gdSectors + gtSectors * gtCount;
  const tablesEnd = gdOffset + gdSectors + gtSectors * gtCount;
  const overhead = Math.ceil(tablesEnd / GRAIN_SECTORS) * GRAIN_SECTORS;
  return { capacity, gdSectors, gtSectors, gtCount, rgdOffset, gdOffset, overhead };
}

/** The grain directory pointing at tables laid out back to back after it. */
function directory(layout: SparseLayout, at: number): Buffer {
  const buf = Buffer.alloc(layout.gdSectors * SECTOR);
  for (let i = 0; i < layout.gtCount; i++) buf.writeUInt32LE(at + layout.gdSectors + i * layout.gtSectors, i * 4);
  return buf;
}

export async function createSparseTarget(
  output: OutputFile,
  virtualSize: number,
  settings: VmdkWriterSettings,
  extentFileName: string,
): Promise<ImageTarget> {
  if (!output.seekable) {
    throw new UsageError(
      "vmdk: monolithicSparse needs a seekable output (its tables are filled in as grains arrive); " +
        "use -o subformat=streamOptimized to write to a pipe or stream",
    );
  }
  const layout = layoutFor(virtualSize);
  const grains = Math.ceil(layout.capacity / GRAIN_SECTORS);
  if (layout.overhead + grains * GRAIN_SECTORS > MAX_FILE_SECTORS) {
    throw new UsageError(
      `vmdk: a monolithicSparse file holds at most about 2 TiB (its tables use 32-bit sector numbers); ` +
        `${virtualSize} bytes is too large`,
    );
  }
  const header = encodeSparseHeader({
    version: 1,
    flags: FLAG_VALID_NEWLINE_DETECTOR | FLAG_REDUNDANT_GRAIN_TABLE,
    capacity: layout.capacity,
    grainSectors: GRAIN_SECTORS,
    descriptorOffset: 1,
    descriptorSectors: DESCRIPTOR_SECTORS,
    gtesPerGt: GTES_PER_GT,
    rgdOffset: layout.rgdOffset,
    gdOffset: layout.gdOffset,
    overheadSectors: layout.overhead,
    compressAlgorithm: COMPRESSION_NONE,
  });
  const descriptor = formatDescriptor({
    createType: "monolithicSparse",
    cid: settings.cid,
    capacitySectors: layout.capacity,
    extentFileName,
    adapterType: settings.adapterType,
    hardwareVersion: settings.hardwareVersion,
    toolsVersion: settings.toolsVersion,
  });
  await output.truncate(layout.overhead * SECTOR);
  await output.writeAt(Buffer.concat([header, descriptorSectors(descriptor)]), 0);
  await output.writeAt(directory(layout, layout.rgdOffset), layout.rgdOffset * SECTOR);
  await output.writeAt(directory(layout, layout.gdOffset), layout.gdOffset * SECTOR);
  return new SparseTarget(output, virtualSize, layout);
}

class SparseTarget extends UnitTarget {
  readonly format = "vmdk";
  readonly access = "random";

  /** Sector where the next grain goes. */
  private nextSector: number;
  /** The grain table being filled, and its index. */
  private table = Buffer.alloc(GTES_PER_GT * 4);
  private tableIndex = 0;
  private tableUsed = false;

  constructor(
    private readonly output: OutputFile,
    virtualSize: number,
    private readonly layout: SparseLayout,
  ) {
    super("vmdk", GRAIN_SECTORS * SECTOR, virtualSize);
    this.nextSector = layout.overhead;
  }

  protected complete(): Promise<void> {
    return this.flushTable();
  }

  /** UnitSink: stores runs of non-zero grains with one write each. */
  async storeUnits(firstGrain: number, data: Buffer): Promise<void> {
    for (const run of nonZeroUnitRuns(data, this.granularity, firstGrain)) await this.storeRun(run.firstUnit, run.data);
  }

  private async storeRun(firstGrain: number, run: Buffer): Promise<void> {
    const sector = this.nextSector;
    const grains = run.length / this.granularity;
    this.nextSector += grains * GRAIN_SECTORS;
    await this.output.writeAt(run, sector * SECTOR);
    for (let i = 0; i < grains; i++) {
      const grain = firstGrain + i;
      const index = Math.floor(grain / GTES_PER_GT);
      if (index !== this.tableIndex) {
        await this.flushTable();
        this.tableIndex = index;
      }
      this.table.writeUInt32LE(sector + i * GRAIN_SECTORS, (grain % GTES_PER_GT) * 4);
      this.tableUsed = true;
    }
  }

  /** Writes the current grain table and its redundant copy, if any grain is in it. */
  private async flushTable(): Promise<void> {
    if (!this.tableUsed) return;
    const bytes = this.table;
    const { gdSectors, gtSectors, rgdOffset, gdOffset } = this.layout;
    const within = this.tableIndex * gtSectors;
    await this.output.writeAt(bytes, (gdOffset + gdSectors + within) * SECTOR);
    await this.output.writeAt(bytes, (rgdOffset + gdSectors + within) * SECTOR);
    this.table = Buffer.alloc(GTES_PER_GT * 4);
    this.tableUsed = false;
  }
}
