/**
 * A qcow2 image opened for reading. Reads map the requested range through the L1/L2 tables, then issue one
 * positional read per host-contiguous stretch of data, decompress compressed clusters in parallel on the
 * threadpool, and fill zero and unallocated ranges (from the backing image when one is allowed). Nothing is
 * mutated after open except the caches, so any number of reads may be in flight at once.
 */
import { realpath } from "node:fs/promises";
import { InputFile } from "../../io/input-file.js";
import type { ImageInput } from "../../io/image-input.js";
import { UnsupportedFeatureError } from "../../errors.js";
import { driverOpenOptions } from "../../engine/create-options.js";
import type { Extent, ImageDetails, ImageSource, OpenOptions } from "../../types.js";
import { ExtentMerger, checkDiskRange, readDestination, settleAll } from "../../engine/source-ranges.js";
import { Qcow2ClusterMap, type MappedRun } from "./qcow2-cluster-map.js";
import { decompressCluster } from "./qcow2-decompress.js";
import { readQcow2Header, type Qcow2Header } from "./qcow2-header.js";
import { LruLoadCache } from "../../io/lru-load-cache.js";
import { resolveReferencePath } from "../../io/reference-paths.js";
import { openBackingImage, type ChainedOpenOptions } from "./qcow2-backing.js";

/** Decompressed clusters kept for reads that cover a cluster in several pieces. */
const DECOMPRESSED_CACHE_BYTES = 8 * 2 ** 20;
/** Largest span of consecutive compressed clusters fetched with one read. */
const COMPRESSED_READ_SPAN = 8 * 2 ** 20;
/** Gap between two compressed clusters' data that one read still bridges rather than issuing two. */
const COMPRESSED_READ_GAP = 4096;

export class Qcow2Source implements ImageSource {
  readonly format = "qcow2";
  readonly virtualSize: number;
  private readonly decompressed: LruLoadCache<number, Buffer>;
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

  static async open(path: string, options: OpenOptions = {}): Promise<Qcow2Source> {
    driverOpenOptions("qcow2", options);
    const file = await InputFile.open(path);
    let dataFile: InputFile | undefined;
    let backing: ImageSource | undefined;
    try {
      const header = await readQcow2Header(file);
      // Both references are checked against the policy before either is opened.
      const dataPath =
        header.dataFile === undefined
          ? undefined
          : await resolveReferencePath(path, header.dataFile, "external data file", options.references);
      const backingPath =
        header.backingFile === undefined
          ? undefined
          : await resolveReferencePath(path, header.backingFile, "backing file", options.references);
      if (dataPath !== undefined) dataFile = await InputFile.open(dataPath);
      if (backingPath !== undefined) {
        backing = await openBackingImage(
          path,
          await realpath(path),
          backingPath,
          header.backingFormat,
          options as ChainedOpenOptions,
        );
      }
      const data = dataFile ?? file;
      const map = await Qcow2ClusterMap.load(file, header, data.size);
      return new Qcow2Source(path, header, file, data, backing ?? null, map);
    } catch (e) {
      await backing?.close().catch(() => undefined);
      await dataFile?.close().catch(() => undefined);
      await file.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Opens the qcow2 image held in `input` (any ImageInput: a byte range of an archive, an HTTP Range reader),
   * named `label` in messages; see openQcow2FromInput. The source owns `input` from now on.
   */
  static async fromInput(input: ImageInput, label = input.path): Promise<Qcow2Source> {
    try {
      // The header and the L1 table are validated against the input's size exactly as for a file, so a
      // hostile header cannot make us allocate more than the image could hold.
      const header = await readQcow2Header(input);
      // A named file has no place to be found relative to: an input has no directory, and reading
      // whatever a remote image names on this host would be a way to leak local files.
      const named =
        header.backingFile !== undefined
          ? `backing file "${header.backingFile}"`
          : header.dataFile !== undefined
            ? `external data file "${header.dataFile}"`
            : undefined;
      if (named !== undefined) {
        throw new UnsupportedFeatureError(
          `${label}: this qcow2 image names a ${named}, which cannot be opened when the image is read from a ` +
            "byte stream or remote store rather than a local path; flatten it first (qemu-img convert -O qcow2) " +
            "or open it from a local file",
        );
      }
      const map = await Qcow2ClusterMap.load(input, header, input.size);
      return new Qcow2Source(label, header, input, input, null, map);
    } catch (e) {
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
   * read; clusters still in the cache skip decompression.
   */
  private async readCompressed(group: readonly CompressedRun[], out: Buffer, base: number): Promise<void> {
    const first = group[0]!;
    const spanEnd = Math.max(...group.map((r) => r.hostOffset + r.hostBytes));
    let span: Promise<Buffer> | undefined;
    const readSpan = () => (span ??= this.file.readPadded(first.hostOffset, spanEnd - first.hostOffset));
    const { clusterSize, compression } = this.header;
    await Promise.all(
      group.map(async (run) => {
        const cluster = await this.decompressed.get(run.hostOffset, clusterSize, async () => {
          const raw = await readSpan();
          const start = run.hostOffset - first.hostOffset;
          const where = `${this.path}: qcow2 compressed cluster at guest offset ${run.clusterOffset}`;
          return decompressCluster(compression, raw.subarray(start, start + run.hostBytes), clusterSize, where);
        });
        const from = run.offset - run.clusterOffset;
        cluster.copy(out, run.offset - base, from, from + run.length);
      }),
    );
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

/**
 * Opens the qcow2 image held in `input` (an InputSlice, an HTTP Range reader), named `label` in messages: the
 * same reader as for a file, minus what a path is needed for. An image naming a backing file or an external
 * data file is refused with UnsupportedFeatureError (there is no directory to resolve the name against). The
 * source owns `input` from now on: it is closed with the source, or before this returns if opening fails.
 */
export function openQcow2FromInput(input: ImageInput, label = input.path): Promise<ImageSource> {
  return Qcow2Source.fromInput(input, label);
}
