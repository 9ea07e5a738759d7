/**
 * Writes a streamOptimized VMDK strictly front to back, so it can go to a pipe or a tar member:
 *
 *   header (version 3, compressed, markers, gdOffset = GD_AT_END) | descriptor | padding to 64 KiB
 *   for each grain holding data, in disk order: grain marker (sector, size) + zlib stream, padded to a sector
 *   after the last grain of each 512-grain range: grain table marker + grain table (if the range has grains)
 *   grain directory marker + grain directory
 *   footer marker + footer (the header again, now with the grain directory's real offset)
 *   end-of-stream marker
 *
 * Grains are compressed on every core (engine/compression-pool: zlib streams, bounded in flight, results in
 * disk order), and the pieces are gathered into ~1 MiB appends. Memory stays bounded for
 * any disk size: one grain table and the grain directory (4 bytes per 32 MiB of disk) are all that is kept.
 * All-zero grains are not stored (entry 0), and a table with no grains is not written (directory entry 0).
 */
import { UsageError } from "../../errors.js";
import type { OutputFile } from "../../io/output-file.js";
import type { ImageTarget } from "../../types.js";
import type { VmdkWriterSettings } from "./vmdk-writer-settings.js";
import { DESCRIPTOR_SECTORS, descriptorSectors, formatDescriptor } from "./vmdk-descriptor-writer.js";
import { CompressionPool } from "../../engine/compression-pool.js";
import { UnitTarget, type DataHold } from "../../engine/unit-assembler.js";
import { GRAIN_MARKER_BYTES } from "./vmdk-compressed-grains.js";
import {
  COMPRESSION_DEFLATE,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_VALID_NEWLINE_DETECTOR,
  MARKER_END_OF_STREAM,
  MARKER_FOOTER,
  MARKER_GRAIN_DIRECTORY,
  MARKER_GRAIN_TABLE,
  SECTOR,
  encodeMarker,
  encodeSparseHeader,
  sparseGeometry,
  type SparseHeaderFields,
} from "./vmdk-sparse-header.js";
import { GRAIN_SECTORS, GTES_PER_GT } from "./vmdk-sparse-target.js";

/** Grains start after 128 sectors (64 KiB), as in ovftool's and VMDKstream's output. */
const OVERHEAD_SECTORS = 128;
/** Appends are gathered up to this size: few large writes to the pipe or file. */
const APPEND_BYTES = 1 * 2 ** 20;
/** Grain table entries and directory entries are 32-bit sector numbers. */
const MAX_SECTOR = 2 ** 32 - 1;

export async function createStreamTarget(
  output: OutputFile,
  virtualSize: number,
  settings: VmdkWriterSettings,
  extentFileName: string,
): Promise<ImageTarget> {
  const capacity = Math.ceil(virtualSize / SECTOR);
  const headerFields: SparseHeaderFields = {
    version: 3,
    flags: FLAG_VALID_NEWLINE_DETECTOR | FLAG_COMPRESSED | FLAG_MARKERS,
    capacity,
    grainSectors: GRAIN_SECTORS,
    descriptorOffset: 1,
    descriptorSectors: DESCRIPTOR_SECTORS,
    gtesPerGt: GTES_PER_GT,
    rgdOffset: 0,
    gdOffset: "at-end",
    overheadSectors: OVERHEAD_SECTORS,
    compressAlgorithm: COMPRESSION_DEFLATE,
  };
  const descriptor = formatDescriptor({
    createType: "streamOptimized",
    cid: settings.cid,
    capacitySectors: capacity,
    extentFileName,
    adapterType: settings.adapterType,
    hardwareVersion: settings.hardwareVersion,
    toolsVersion: settings.toolsVersion,
  });
  const head = Buffer.alloc(OVERHEAD_SECTORS * SECTOR);
  encodeSparseHeader(headerFields).copy(head, 0);
  descriptorSectors(descriptor).copy(head, SECTOR);
  const target = new StreamTarget(output, virtualSize, headerFields, settings.compressionLevel);
  await target.start(head);
  return target;
}

class StreamTarget extends UnitTarget {
  readonly format = "vmdk";
  readonly access = "sequential";

  /** Grains are zlib streams (RFC 1950: header, deflate data, Adler-32), as VMware and qemu write them. */
  private readonly compressor: CompressionPool<number>;
  private readonly padding = Buffer.alloc(SECTOR);
  /** Sector of every grain table written (0: none), indexed by table. */
  private readonly directory: Buffer;
  private table = Buffer.alloc(GTES_PER_GT * 4);
  private tableIndex = 0;
  private tableUsed = false;
  /** Bytes handed to the output so far plus those gathered for the next append. */
  private written = 0;
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;

  constructor(
    private readonly output: OutputFile,
    virtualSize: number,
    private readonly headerFields: SparseHeaderFields,
    level: number,
  ) {
    super("vmdk", GRAIN_SECTORS * SECTOR, virtualSize);
    const { gtCount } = sparseGeometry(headerFields);
    this.directory = Buffer.alloc(Math.ceil((gtCount * 4) / SECTOR) * SECTOR);
    this.compressor = new CompressionPool<number>({
      codec: { kind: "deflate", level },
      blockSize: this.granularity,
      deliver: (grain, _input, compressed) => this.appendGrain(grain, compressed),
    });
  }

  async start(head: Buffer): Promise<void> {
    this.gather(head);
    await this.flush();
  }

  protected async complete(): Promise<void> {
    await this.compressor.drain();
    this.closeTable();
    const gdSectors = this.directory.length / SECTOR;
    this.gather(encodeMarker(MARKER_GRAIN_DIRECTORY, gdSectors));
    const gdSector = this.sector();
    this.gather(this.directory);
    this.gather(encodeMarker(MARKER_FOOTER, 1));
    this.gather(encodeSparseHeader({ ...this.headerFields, gdOffset: gdSector }));
    this.gather(encodeMarker(MARKER_END_OF_STREAM, 0));
    await this.flush();
    this.compressor.close();
  }

  protected override abandon(): void {
    this.compressor.abandon();
  }

  /** UnitSink: queues each non-zero grain for compression (the pool copies or holds borrowed data). */
  storeUnits(firstGrain: number, data: Buffer, borrowed: boolean): Promise<DataHold | void> {
    return this.compressor.submitUnits(firstGrain, data, borrowed);
  }

  /** One compressed grain, in disk order: its table entry, marker, data and padding. */
  private async appendGrain(grain: number, compressed: Buffer): Promise<void> {
    if (this.assembler.aborted) return;
    const index = Math.floor(grain / GTES_PER_GT);
    if (index !== this.tableIndex) {
      this.closeTable();
      this.tableIndex = index;
    }
    this.table.writeUInt32LE(this.sector(), (grain % GTES_PER_GT) * 4);
    this.tableUsed = true;
    const marker = Buffer.allocUnsafe(GRAIN_MARKER_BYTES);
    marker.writeBigUInt64LE(BigInt(grain * GRAIN_SECTORS), 0);
    marker.writeUInt32LE(compressed.length, 8);
    this.gather(marker);
    this.gather(compressed);
    const tail = (GRAIN_MARKER_BYTES + compressed.length) % SECTOR;
    if (tail !== 0) this.gather(this.padding.subarray(0, SECTOR - tail));
    if (this.gatheredBytes >= APPEND_BYTES) await this.flush();
  }

  /** Emits the current grain table (marker + entries) if it maps any grain, and records it in the directory. */
  private closeTable(): void {
    if (!this.tableUsed) return;
    this.gather(encodeMarker(MARKER_GRAIN_TABLE, this.table.length / SECTOR));
    this.directory.writeUInt32LE(this.sector(), this.tableIndex * 4);
    this.gather(this.table);
    this.table = Buffer.alloc(GTES_PER_GT * 4);
    this.tableUsed = false;
  }

  /** The sector the next gathered byte lands on (everything gathered is whole sectors except mid-grain). */
  private sector(): number {
    const sector = this.written / SECTOR;
    if (sector > MAX_SECTOR) {
      throw new UsageError("vmdk: streamOptimized output grew past 2 TiB, the most its 32-bit tables can address");
    }
    return sector;
  }

  private gather(piece: Buffer): void {
    this.gathered.push(piece);
    this.gatheredBytes += piece.length;
    this.written += piece.length;
  }

  private async flush(): Promise<void> {
    if (this.gatheredBytes === 0) return;
    const data = this.gathered.length === 1 ? this.gathered[0]! : Buffer.concat(this.gathered, this.gatheredBytes);
    this.gathered = [];
    this.gatheredBytes = 0;
    await this.output.append(data);
  }
}
