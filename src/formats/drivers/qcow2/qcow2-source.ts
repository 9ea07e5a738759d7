/**
 * A qcow2 image opened for reading. Reads map the requested range through the L1/L2 tables, then issue one
 * positional read per host-contiguous stretch of data, decompress compressed clusters in parallel on the
 * threadpool, and fill zero and unallocated ranges (from the backing image when one is allowed). Nothing is
 * mutated after open except the caches, so any number of reads may be in flight at once.
 */
import type { ImageInput } from "../../inputs/image-input.js";
import { requireRandomAccess } from "../../inputs/require-random-access.js";
import type { DriverOpenContext, Extent, ImageDetails, ImageSource } from "../../types.js";
import { ExtentMerger, checkDiskRange, readDestination, settleAll } from "../../engine/source-ranges.js";
import { Qcow2ClusterMap, type MappedRun } from "./qcow2-cluster-map.js";
import { decompressCluster, inflateClustersInto } from "./qcow2-decompress.js";
import { nativeInflateBatch } from "../../engine/native-inflate-batch.js";
import { INCOMPATIBLE, readQcow2Header, type Qcow2Header } from "./qcow2-header.js";
import { LruLoadCache } from "../../io/lru-load-cache.js";
import { SpareBuffers } from "../../io/spare-buffers.js";

/** Decompressed clusters kept for reads that cover a cluster in several pieces. */
const DECOMPRESSED_CACHE_BYTES = 8 * 2 ** 20;
/** Largest span of consecutive compressed clusters fetched with one read. */
const COMPRESSED_READ_SPAN = 8 * 2 ** 20;
/** Gap between two compressed clusters' data that one read still bridges rather than issuing two. */
const COMPRESSED_READ_GAP = 4096;
/** Span buffers kept for the next reads: the engine keeps 2 reads in flight, a third covers overlap. */
const SPARE_SPANS = 3;

export class Qcow2Source implements ImageSource {
  readonly format = "qcow2";
  readonly virtualSize: number;
  private readonly decompressed: LruLoadCache<number, Buffer>;
  private readonly spans = new SpareBuffers(SPARE_SPANS, COMPRESSED_READ_SPAN);
  private detailsPromise: Promise<ImageDetails> | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly header: Qcow2Header,
    private readonly file: ImageInput,
    /** Where guest data clusters live: `file` itself, or the external data file. */
    private readonly dataFile: ImageInput,
    private readonly backing: ImageSource | null,
    private readonly map: Qcow2ClusterMap,
  ) {
    this.virtualSize = header.virtualSize;
    this.decompressed = new LruLoadCache(Math.max(DECOMPRESSED_CACHE_BYTES, 2 * header.clusterSize));
  }

  /**
   * Opens the qcow2 image held in `input`. The files it names (backing, external data file) are opened
   * through the engine's reference opener, both checked against the policy before either is read.
   */
  static async open(input: ImageInput, context: DriverOpenContext): Promise<Qcow2Source> {
    let dataFile: ImageInput | undefined;
    let backing: ImageSource | undefined;
    try {
      requireRandomAccess(input, "qcow2");
      // The header and the L1 table are validated against the input's size, so a hostile header cannot make
      // us allocate more than the image could hold.
      const header = await readQcow2Header(input);
      if (header.dataFile !== undefined) {
        dataFile = await context.references.openFile(input, header.dataFile, "external data file");
      }
      if (header.backingFile !== undefined) {
        backing = await context.references.openImage(input, header.backingFile, header.backingFormat, "backing file");
      }
      const data = dataFile ?? input;
      const map = await Qcow2ClusterMap.load(input, header, data.size);
      return new Qcow2Source(input.path, header, input, data, backing ?? null, map);
    } catch (e) {
      await backing?.close().catch(() => undefined);
      await dataFile?.close().catch(() => undefined);
      await input.close().catch(() => undefined);
      throw e;
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.path, offset, length, this.virtualSize);
    const out = readDestination(this.path, length, into);
    if (length === 0) return out;
    const runs = await this.map.map(offset, length);
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < runs.length;) {
      const run = runs[i]!;
      const dest = out.subarray(run.offset - offset, run.offset - offset + run.length);
      switch (run.kind) {
        case "zero":
          dest.fill(0);
          i++;
          break;
        case "unallocated":
          if (this.backing) jobs.push(this.readFromBacking(this.backing, run.offset, dest));
          else dest.fill(0);
          i++;
          break;
        case "data":
          jobs.push(this.dataFile.readPadded(run.hostOffset, run.length, dest));
          i++;
          break;
        case "compressed": {
          const group = compressedGroup(runs, i);
          jobs.push(this.readCompressed(group, out, offset));
          i += group.length;
          break;
        }
      }
    }
    await settleAll(jobs);
    return out;
  }

  private async readFromBacking(backing: ImageSource, offset: number, dest: Buffer): Promise<void> {
    // A backing image smaller than this one reads as zeros past its end.
    const inBacking = Math.max(0, Math.min(dest.length, backing.virtualSize - offset));
    if (inBacking > 0) {
      const target = dest.subarray(0, inBacking);
      const got = await backing.read(offset, inBacking, target);
      if (got.buffer !== target.buffer || got.byteOffset !== target.byteOffset) got.copy(target);
    }
    dest.fill(0, inBacking);
  }

  /**
   * Decompresses the compressed clusters behind `group` (runs whose streams lie close together in the file)
   * and copies the requested parts into `out` (which starts at guest offset `base`). The streams come from one
   * read, into a span buffer kept for the next group; clusters still in the cache skip decompression.
   */
  private async readCompressed(group: readonly CompressedRun[], out: Buffer, base: number): Promise<void> {
    const first = group[0]!;
    const spanEnd = Math.max(...group.map((r) => r.hostOffset + r.hostBytes));
    let span: { buffer: Buffer; read: Promise<Buffer> } | undefined;
    const readSpan = () => {
      if (!span) {
        const buffer = this.spans.take(spanEnd - first.hostOffset);
        span = { buffer, read: this.file.readPadded(first.hostOffset, buffer.length, buffer) };
      }
      return span.read;
    };
    const { clusterSize, compression } = this.header;
    const where = (run: CompressedRun) => `${this.path}: qcow2 compressed cluster at guest offset ${run.clusterOffset}`;
    const copyCluster = async (run: CompressedRun) => {
      const cluster = await this.decompressed.get(run.hostOffset, clusterSize, async () => {
        const raw = await readSpan();
        const start = run.hostOffset - first.hostOffset;
        return decompressCluster(compression, raw.subarray(start, start + run.hostBytes), clusterSize, where(run));
      });
      const from = run.offset - run.clusterOffset;
      cluster.copy(out, run.offset - base, from, from + run.length);
    };
    // Whole zlib clusters are inflated where they belong in `out`, by the batch inflater when it is built.
    // Parts of a cluster go through the cache, for the read that wants the rest of it.
    const inflater = compression === "zlib" ? nativeInflateBatch() : null;
    const whole = (run: CompressedRun) => inflater !== null && run.length === clusterSize;
    const inPlace = group.filter(whole).map((run) => ({
      start: run.hostOffset - first.hostOffset,
      length: run.hostBytes,
      outOffset: run.offset - base,
      where: () => where(run),
    }));
    const jobs = group.filter((run) => !whole(run)).map(copyCluster);
    if (inflater && inPlace.length > 0) {
      jobs.push(readSpan().then((raw) => inflateClustersInto(inflater, raw, inPlace, out, clusterSize)));
    }
    try {
      // Decompression reads the span where it lies: it is reused only once every cluster is done, failed or not.
      await settleAll(jobs);
    } finally {
      if (span) this.spans.give(span.buffer);
    }
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.path, offset, length, this.virtualSize);
    const merger = new ExtentMerger();
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const spanEnd = Math.min(end, (Math.floor(pos / this.map.l2Span) + 1) * this.map.l2Span);
      // Runs of unallocated L2 tables are skipped without awaiting anything: a sparse 64 TiB disk is quick.
      if (!this.map.hasL2Table(pos)) {
        let stretchEnd = spanEnd;
        while (stretchEnd < end && !this.map.hasL2Table(stretchEnd)) {
          stretchEnd = Math.min(end, stretchEnd + this.map.l2Span);
        }
        yield* this.unallocatedExtents(pos, stretchEnd - pos, merger);
        pos = stretchEnd;
        continue;
      }
      for (const run of await this.map.map(pos, spanEnd - pos)) {
        if (run.kind === "unallocated") yield* this.unallocatedExtents(run.offset, run.length, merger);
        else yield* merger.add(run.offset, run.length, run.kind === "compressed" ? "data" : run.kind);
      }
      pos = spanEnd;
    }
    yield* merger.flush();
  }

  /** Extents of a range this image leaves unallocated: the backing image's map where there is one. */
  private async *unallocatedExtents(offset: number, length: number, merger: ExtentMerger): AsyncGenerator<Extent> {
    const backing = this.backing;
    const inBacking = backing ? Math.max(0, Math.min(length, backing.virtualSize - offset)) : 0;
    if (backing && inBacking > 0) {
      for await (const e of backing.extents(offset, inBacking)) yield* merger.add(e.offset, e.length, e.kind);
    }
    if (inBacking < length) yield* merger.add(offset + inBacking, length - inBacking, "unallocated");
  }

  details(): Promise<ImageDetails> {
    return (this.detailsPromise ??= this.computeDetails());
  }

  private async computeDetails(): Promise<ImageDetails> {
    // One pass over the L2 tables (metadata only, a small fraction of the image) counts stored guest bytes.
    let allocatedBytes = 0;
    let compressedClusters = 0;
    for (let pos = 0; pos < this.virtualSize; pos += this.map.l2Span) {
      if (!this.map.hasL2Table(pos)) continue;
      for (const run of await this.map.map(pos, Math.min(this.map.l2Span, this.virtualSize - pos))) {
        if (run.kind === "data") allocatedBytes += run.length;
        if (run.kind === "compressed") {
          allocatedBytes += run.length;
          compressedClusters++;
        }
      }
    }
    const h = this.header;
    const formatSpecific: Record<string, string | number | boolean> = {
      version: h.version,
      compat: h.version === 2 ? "0.10" : "1.1",
      refcountBits: h.refcountBits,
      extendedL2: h.extendedL2,
      lazyRefcounts: h.lazyRefcounts,
      dirty: h.dirty,
      // Set by qemu when it finds the metadata inconsistent; reading is still allowed, as in qemu.
      corrupt: (h.incompatibleFeatures & INCOMPATIBLE.corrupt) !== 0n,
      compressedClusters,
      snapshots: h.snapshotCount,
    };
    if (h.hasExternalDataFile) formatSpecific.rawExternalData = h.rawExternalData;
    if (h.hasBitmaps) formatSpecific.bitmaps = true;
    return {
      format: "qcow2",
      virtualSize: this.virtualSize,
      actualSize: this.file.allocatedSize + (this.dataFile === this.file ? 0 : this.dataFile.allocatedSize),
      allocatedBytes,
      clusterSize: h.clusterSize,
      compression: h.compression,
      backingFile: h.backingFile,
      backingFormat: h.backingFormat,
      dataFile: h.dataFile,
      formatSpecific,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.decompressed.clear();
    this.spans.clear();
    await Promise.allSettled([
      this.backing?.close(),
      this.dataFile === this.file ? undefined : this.dataFile.close(),
      this.file.close(),
    ]);
  }
}

type CompressedRun = Extract<MappedRun, { kind: "compressed" }>;

/** The compressed runs from `runs[start]` on whose streams are close enough in the file to read at once. */
function compressedGroup(runs: readonly MappedRun[], start: number): CompressedRun[] {
  const first = runs[start] as CompressedRun;
  const group = [first];
  let spanEnd = first.hostOffset + first.hostBytes;
  for (let i = start + 1; i < runs.length; i++) {
    const run = runs[i]!;
    if (run.kind !== "compressed") break;
    const end = Math.max(spanEnd, run.hostOffset + run.hostBytes);
    if (run.hostOffset < first.hostOffset || run.hostOffset > spanEnd + COMPRESSED_READ_GAP) break;
    if (end - first.hostOffset > COMPRESSED_READ_SPAN) break;
    group.push(run);
    spanEnd = end;
  }
  return group;
}
