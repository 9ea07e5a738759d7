/**
 * Writes a new qcow2 image (version 3) in one front-to-back pass, from the convert pipeline's ordered ranges.
 *
 * The pieces, one file each:
 *   qcow2-writer-options            `-o` options, validated before anything is written
 *   qcow2-writer-cluster-assembler  arbitrary byte ranges → whole guest clusters
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
import { parseQcow2Options, type Qcow2WriterSettings } from "./qcow2-writer-options.js";
import { ClusterAssembler, type ClusterSink } from "./qcow2-writer-cluster-assembler.js";
import { qcow2Codec } from "./qcow2-writer-compression.js";
import { Qcow2HostFile } from "./qcow2-writer-host-file.js";
import { Qcow2Mapping } from "./qcow2-writer-mapping.js";
import { encodeQcow2Header } from "./qcow2-writer-header.js";

export { qcow2CreateOptions } from "./qcow2-writer-options.js";

/** qemu addresses the disk in 512-byte sectors and ignores a partial last one, so the stored size is rounded up. */
const SECTOR = 512;
/** Recycled cluster buffers kept: about what the compression pool keeps in flight, bounded by bytes. */
const SPARE_CLUSTER_BYTES = 16 * 2 ** 20;
const MAX_SPARE_CLUSTERS = 64;

export async function createQcow2Target(
  output: OutputFile,
  virtualSize: number,
  options: CreateOptions,
): Promise<ImageTarget> {
  const settings = parseQcow2Options(options, virtualSize);
  if (!output.seekable) {
    throw new UsageError(
      "qcow2 output needs a seekable file (its header and tables are written after the data); it cannot go to a pipe or stream",
    );
  }
  return new Qcow2Target(output, virtualSize, settings);
}

class Qcow2Target implements ImageTarget, ClusterSink {
  readonly format = "qcow2";
  readonly access = "random";
  readonly granularity: number;

  private readonly clusterSize: number;
  private readonly storedSize: number;
  private readonly l1Entries: number;
  private readonly host: Qcow2HostFile;
  private readonly mapping: Qcow2Mapping;
  private readonly assembler: ClusterAssembler;
  private readonly compressionPool: CompressionPool<number> | undefined;
  /** Cluster buffers handed to the compression pool and back, reused so steady state allocates nothing. */
  private readonly spareClusters: Buffer[] = [];
  private readonly zeroCluster: Buffer;

  /** Calls run one after another even if the caller does not wait; the first failure fails every later call. */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private state: "writing" | "finished" | "aborted" = "writing";

  constructor(
    output: OutputFile,
    virtualSize: number,
    private readonly settings: Qcow2WriterSettings,
  ) {
    const size = settings.clusterSize;
    this.clusterSize = size;
    this.granularity = size;
    this.storedSize = Math.ceil(virtualSize / SECTOR) * SECTOR;
    this.l1Entries = Math.ceil(Math.ceil(this.storedSize / size) / (size / 8));
    this.zeroCluster = Buffer.alloc(size);
    this.host = new Qcow2HostFile(output, size);
    this.mapping = new Qcow2Mapping(this.host, size, settings.clusterBits, this.l1Entries);
    this.assembler = new ClusterAssembler(size, virtualSize, this);
    if (settings.compression !== "none") {
      this.compressionPool = new CompressionPool<number>({
        codec: qcow2Codec(settings.compression, settings.compressionLevel, settings.clusterBits),
        blockSize: size,
        // Clusters that would not shrink are stored as they are anyway; deflate need not grind through them.
        skipIncompressible: settings.compression === "zlib",
        deliver: (guestCluster, input, output) => this.storeCompressed(guestCluster, input, output),
      });
    }
  }

  writeData(offset: number, data: Buffer): Promise<void> {
    return this.serialized(() => this.assembler.writeData(offset, data));
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    // Explicit zeros and unallocated runs are stored alike: unallocated clusters read as zeros here.
    return this.serialized(() => this.assembler.writeZeroes(offset, length));
  }

  finish(): Promise<void> {
    return this.serialized(async () => {
      await this.assembler.finish();
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
      this.state = "finished";
    });
  }

  async abort(): Promise<void> {
    this.state = "aborted";
    this.compressionPool?.abandon();
    // Let a call in progress settle so nothing writes after abort() resolves; its error is the caller's already.
    await this.tail;
  }

  /** ClusterSink: whole clusters from the assembler, in guest order. */
  async storeClusters(firstCluster: number, data: Buffer): Promise<void> {
    const size = this.clusterSize;
    const count = data.length / size;
    if (this.compressionPool) {
      for (let i = 0; i < count; i++) {
        const cluster = data.subarray(i * size, (i + 1) * size);
        if (cluster.equals(this.zeroCluster)) continue;
        // The pool keeps the cluster until it is compressed and stored, after the caller may reuse `data`.
        const copy = this.spareClusters.pop() ?? Buffer.allocUnsafeSlow(size);
        cluster.copy(copy);
        await this.compressionPool.submit(firstCluster + i, copy);
      }
      return;
    }
    // Uncompressed: each run of non-zero clusters becomes one append (and usually one write, straight from the
    // caller's buffer). Runs are cut at L2 table boundaries, since the finished L2 table is appended there.
    const l2Entries = this.mapping.l2Entries;
    let runStart = -1;
    for (let i = 0; i < count; i++) {
      const zero = data.subarray(i * size, (i + 1) * size).equals(this.zeroCluster);
      const newTable = (firstCluster + i) % l2Entries === 0;
      if (runStart >= 0 && (zero || newTable)) {
        await this.storeRun(firstCluster + runStart, data.subarray(runStart * size, i * size));
        runStart = -1;
      }
      if (!zero && runStart < 0) runStart = i;
    }
    if (runStart >= 0) await this.storeRun(firstCluster + runStart, data.subarray(runStart * size));
  }

  private async storeRun(firstCluster: number, run: Buffer): Promise<void> {
    const hostOffset = await this.host.appendClusters(run);
    await this.mapping.mapStandard(firstCluster, run.length / this.clusterSize, hostOffset);
  }

  /**
   * One compressed cluster, in guest order; stored as is when compression did not make it smaller (as qemu),
   * or when the pool judged it incompressible (empty output).
   */
  private async storeCompressed(guestCluster: number, input: Buffer, output: Buffer): Promise<void> {
    if (this.state === "aborted") return;
    if (output.length > 0 && output.length < this.clusterSize) {
      const hostOffset = await this.host.appendCompressed(output);
      await this.mapping.mapCompressed(guestCluster, hostOffset, output.length);
    } else {
      await this.storeRun(guestCluster, input);
    }
    // Written (or copied for writing) by now: the buffer can carry another cluster.
    const keep = Math.min(MAX_SPARE_CLUSTERS, Math.max(2, Math.floor(SPARE_CLUSTER_BYTES / this.clusterSize)));
    if (this.spareClusters.length < keep) this.spareClusters.push(input);
  }

  private serialized(step: () => Promise<void>): Promise<void> {
    const run = this.tail.then(() => {
      if (this.failure !== undefined) throw this.failure;
      if (this.state !== "writing") throw new Error(`qcow2 target used after it was ${this.state}`);
      return step();
    });
    this.tail = run.catch((e: unknown) => {
      this.failure ??= e;
    });
    return run;
  }
}
