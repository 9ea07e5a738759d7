/**
 * Writes a new qcow2 image (version 3) in one front-to-back pass, from the convert pipeline's ordered ranges.
 *
 * The pieces, one file each:
 *   qcow2-create-options            `-o` options, validated before anything is written
 *   qcow2-writer-options            the settings they make, defaults applied
 *   ../../engine/unit-assembler     arbitrary byte ranges → whole guest clusters, calls kept in order
 *   qcow2-writer-compression        one cluster → zlib or zstd bytes, framed as qemu reads them
 *   ../../engine/compression-pool   many clusters compressing on all cores, results in order
 *   qcow2-writer-mapping            L1 / L2 tables
 *   qcow2-writer-host-file          where clusters, tables and refcounts go in the file (layout explained there)
 *   qcow2-writer-refcounts          refcount blocks, written as soon as they are final
 *   qcow2-writer-coalescer          few large writes instead of many small ones
 *   qcow2-writer-header             the header cluster, written last
 *
 * A cluster that is all zeros is never stored: its L2 entry stays 0 (unallocated, which reads as zeros as
 * there is no backing file), whether it came as a zero run, as zeros written as data, or as padding.
 */
import type { CreateOptions, ImageTarget } from "../../types.js";
import { UsageError } from "../../errors.js";
import type { OutputFile } from "../../io/output-file.js";
import { CompressionPool } from "../../engine/compression-pool.js";
import { UnitTarget, nonZeroUnitRuns, type DataHold } from "../../engine/unit-assembler.js";
import { qcow2WriterSettings, type Qcow2WriterSettings } from "./qcow2-writer-options.js";
import { qcow2Codec } from "./qcow2-writer-compression.js";
import { Qcow2HostFile } from "./qcow2-writer-host-file.js";
import { Qcow2Mapping } from "./qcow2-writer-mapping.js";
import { encodeQcow2Header } from "./qcow2-writer-header.js";

/** qemu addresses the disk in 512-byte sectors and ignores a partial last one, so the stored size is rounded up. */
const SECTOR = 512;

export async function createQcow2Target(
  output: OutputFile,
  virtualSize: number,
  options: CreateOptions,
): Promise<ImageTarget> {
  const settings = await qcow2WriterSettings(options, virtualSize);
  if (!output.seekable) {
    throw new UsageError(
      "qcow2 output needs a seekable file (its header and tables are written after the data); it cannot go to a pipe or stream",
    );
  }
  return new Qcow2Target(output, virtualSize, settings);
}

/** Explicit zeros and unallocated runs are stored alike: unallocated clusters read as zeros here. */
class Qcow2Target extends UnitTarget {
  readonly format = "qcow2";
  readonly access = "random";

  private readonly clusterSize: number;
  private readonly storedSize: number;
  private readonly l1Entries: number;
  private readonly host: Qcow2HostFile;
  private readonly mapping: Qcow2Mapping;
  private readonly compressionPool: CompressionPool<number> | undefined;

  constructor(
    output: OutputFile,
    virtualSize: number,
    private readonly settings: Qcow2WriterSettings,
  ) {
    super("qcow2", settings.clusterSize, virtualSize);
    const size = settings.clusterSize;
    this.clusterSize = size;
    this.storedSize = Math.ceil(virtualSize / SECTOR) * SECTOR;
    this.l1Entries = Math.ceil(Math.ceil(this.storedSize / size) / (size / 8));
    this.host = new Qcow2HostFile(output, size);
    this.mapping = new Qcow2Mapping(this.host, size, settings.clusterBits, this.l1Entries);
    if (settings.compression !== "none") {
      this.compressionPool = new CompressionPool<number>({
        codec: qcow2Codec(settings.compression, settings.compressionLevel, settings.clusterBits),
        blockSize: size,
        // Clusters that would not shrink are stored as they are anyway; deflate need not grind through them.
        skipIncompressible: settings.compression === "zlib",
        deliver: (guestCluster, input, output) => this.storeCompressed(guestCluster, input, output),
        // Compressed bytes are copied into the packing cluster before storeCompressed resolves.
        deliverCopiesOutput: true,
      });
    }
  }

  protected async complete(): Promise<void> {
    await this.compressionPool?.drain();
    await this.mapping.finish();
    const layout = await this.host.finish(this.mapping.l1Table);
    const header = encodeQcow2Header({
      clusterSize: this.clusterSize,
      clusterBits: this.settings.clusterBits,
      virtualSize: this.storedSize,
      compression: this.settings.compression,
      l1Entries: this.l1Entries,
      l1TableOffset: layout.l1TableOffset,
      refcountTableOffset: layout.refcountTableOffset,
      refcountTableClusters: layout.refcountTableClusters,
    });
    await this.host.writeHeader(header);
    this.compressionPool?.close();
  }

  protected override abandon(): void {
    this.compressionPool?.abandon();
  }

  /** UnitSink: whole clusters from the assembler, in guest order. */
  async storeUnits(firstCluster: number, data: Buffer, borrowed: boolean): Promise<DataHold | void> {
    // Compressed: the pool reads borrowed clusters where they are and holds them until they are stored.
    if (this.compressionPool) return this.compressionPool.submitUnits(firstCluster, data, borrowed);
    // Uncompressed: each run of non-zero clusters becomes one append (and usually one write, straight from the
    // caller's buffer, still in flight when this returns: the hold releases the buffer once it landed). Runs
    // are cut at L2 table boundaries, since the finished L2 table is appended there.
    const writes: Promise<void>[] = [];
    for (const run of nonZeroUnitRuns(data, this.clusterSize, firstCluster, this.mapping.l2Entries)) {
      writes.push((await this.storeRunHeld(run.firstUnit, run.data)).landed);
    }
    if (writes.length === 0) return;
    return { released: writes.length === 1 ? writes[0]! : Promise.all(writes).then(() => undefined) };
  }

  private async storeRun(firstCluster: number, run: Buffer): Promise<void> {
    await (
      await this.storeRunHeld(firstCluster, run)
    ).landed;
  }

  /** Places and maps a run of clusters; `landed` resolves when its bytes are in the file. */
  private async storeRunHeld(firstCluster: number, run: Buffer): Promise<{ readonly landed: Promise<void> }> {
    const { at, landed } = await this.host.appendClustersHeld(run);
    landed.catch(() => undefined); // reported through the hold
    await this.mapping.mapStandard(firstCluster, run.length / this.clusterSize, at);
    return { landed };
  }

  /**
   * One compressed cluster, in guest order; stored as is when compression did not make it smaller (as qemu),
   * or when the pool judged it incompressible (empty output).
   */
  private async storeCompressed(guestCluster: number, input: Buffer, output: Buffer): Promise<void> {
    if (this.assembler.aborted) return;
    if (output.length > 0 && output.length < this.clusterSize) {
      const hostOffset = await this.host.appendCompressed(output);
      await this.mapping.mapCompressed(guestCluster, hostOffset, output.length);
    } else {
      await this.storeRun(guestCluster, input);
    }
    // Written (or copied for writing) by now: the pool may reuse `input` for another cluster.
  }
}
