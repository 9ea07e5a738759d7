/**
 * Translation of guest offsets to where their bytes live, through qcow2's two-level L1/L2 tables. The L1
 * table is read once at open (its size was capped by the header checks); L2 tables, one cluster each, are
 * read on demand through a byte-capped LRU cache, so memory stays bounded whatever the image size. Every
 * host offset taken from a table is checked (aligned, inside the file, not over the metadata) before anyone
 * reads at it.
 */
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { metadataSpans, type Qcow2Header } from "./qcow2-header.js";
import { LruLoadCache } from "../../io/lru-load-cache.js";

/** A stretch of the guest disk and where its bytes come from. */
export type MappedRun =
  /** Stored uncompressed at `hostOffset` (in the data file) onwards; adjacent clusters contiguous on the host are merged. */
  | { readonly kind: "data"; readonly offset: number; readonly length: number; readonly hostOffset: number }
  /** Part of one compressed cluster whose guest start is `clusterOffset` and whose stream is at `hostOffset`. */
  | {
      readonly kind: "compressed";
      readonly offset: number;
      readonly length: number;
      readonly clusterOffset: number;
      readonly hostOffset: number;
      readonly hostBytes: number;
    }
  /** Reads as zeros by an explicit zero flag. */
  | { readonly kind: "zero"; readonly offset: number; readonly length: number }
  /** Not allocated here: zeros, or the backing file's bytes. */
  | { readonly kind: "unallocated"; readonly offset: number; readonly length: number };

/** Total bytes of L2 tables kept in memory: 16 MiB maps 128 GiB of guest disk with 64 KiB clusters. */
const L2_CACHE_BYTES = 16 * 2 ** 20;
const TWO_POW_32 = 2 ** 32;
/** Standard cluster descriptor, high word: host offset bits 32..55. */
const HIGH_OFFSET_MASK = 0x00ffffff;
/** Standard cluster descriptor, low word: host offset bits 9..31 (bits 0..8 are flags or reserved). */
const LOW_OFFSET_MASK = 0xfffffe00;
const COMPRESSED_FLAG = 0x40000000;
const COPIED_FLAG = 0x80000000;
const ZERO_FLAG = 1;
const SUBCLUSTERS = 32;
const ALL_SUBCLUSTERS = 0xffffffff;

export class Qcow2ClusterMap {
  /** Guest bytes one L2 table maps. */
  readonly l2Span: number;
  private readonly l2Cache = new LruLoadCache<number, Buffer>(L2_CACHE_BYTES);
  private readonly metadata;
  private readonly compressedOffsetBits: number;

  private constructor(
    private readonly file: ImageInput,
    private readonly header: Qcow2Header,
    private readonly l1: Buffer,
    /** Size of the file holding guest data: the image itself, or the external data file. */
    private readonly dataSize: number,
  ) {
    this.l2Span = header.clusterSize * header.l2Entries;
    this.metadata = metadataSpans(header);
    this.compressedOffsetBits = 70 - header.clusterBits;
  }

  static async load(file: ImageInput, header: Qcow2Header, dataSize: number): Promise<Qcow2ClusterMap> {
    // Only the entries that cover the virtual disk matter; a larger l1_size is legal but its tail is unused.
    const used = Math.ceil(header.virtualSize / (header.clusterSize * header.l2Entries));
    const l1 = await file.readExact(header.l1TableOffset, used * 8, undefined, "qcow2 L1 table");
    return new Qcow2ClusterMap(file, header, l1, dataSize);
  }

  /** Whether the L2 table covering guest offset `offset` exists (false: the whole span is unallocated). */
  hasL2Table(offset: number): boolean {
    return this.l2TableOffset(Math.floor(offset / this.l2Span)) !== 0;
  }

  /** The runs covering [offset, offset + length), in order, merged where adjacent and alike. */
  async map(offset: number, length: number): Promise<MappedRun[]> {
    const runs = new RunBuilder();
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const l1Index = Math.floor(pos / this.l2Span);
      const spanEnd = Math.min(end, (l1Index + 1) * this.l2Span);
      const table = await this.l2Table(l1Index);
      if (table === null) runs.add("unallocated", pos, spanEnd - pos, 0);
      else this.mapWithinTable(table, l1Index, pos, spanEnd, runs);
      pos = spanEnd;
    }
    return runs.runs;
  }

  private mapWithinTable(table: Buffer, l1Index: number, start: number, end: number, runs: RunBuilder): void {
    const { clusterSize, l2EntryBytes, extendedL2 } = this.header;
    const tableStart = l1Index * this.l2Span;
    for (
      let clusterStart = start - ((start - tableStart) % clusterSize);
      clusterStart < end;
      clusterStart += clusterSize
    ) {
      const from = Math.max(start, clusterStart);
      const to = Math.min(end, clusterStart + clusterSize);
      const at = ((clusterStart - tableStart) / clusterSize) * l2EntryBytes;
      const high = table.readUInt32BE(at);
      const low = table.readUInt32BE(at + 4);

      if (high & COMPRESSED_FLAG) {
        if (extendedL2 && (table.readUInt32BE(at + 8) !== 0 || table.readUInt32BE(at + 12) !== 0)) {
          throw this.corrupt(clusterStart, "is compressed but has a subcluster bitmap");
        }
        this.addCompressed(high, low, clusterStart, from, to, runs);
        continue;
      }

      const hostCluster = (high & HIGH_OFFSET_MASK) * TWO_POW_32 + ((low & LOW_OFFSET_MASK) >>> 0);
      // Host offset 0 is "unallocated", except with an external data file where guest cluster 0 maps to
      // data-file offset 0 and the copied flag tells the two apart.
      const allocated = hostCluster !== 0 || (this.header.hasExternalDataFile && (high & COPIED_FLAG) !== 0);

      if (!extendedL2) {
        if (low & ZERO_FLAG) {
          if (this.header.version === 2) throw this.corrupt(clusterStart, "has the zero flag, which version 2 lacks");
          runs.add("zero", from, to - from, 0);
        } else if (!allocated) {
          runs.add("unallocated", from, to - from, 0);
        } else {
          this.checkDataCluster(hostCluster, clusterStart);
          runs.add("data", from, to - from, hostCluster + (from - clusterStart));
        }
        continue;
      }

      const zeroBits = table.readUInt32BE(at + 8);
      const allocBits = table.readUInt32BE(at + 12);
      if ((zeroBits & allocBits) !== 0) {
        throw this.corrupt(clusterStart, "has subclusters marked both allocated and zero");
      }
      if (allocBits !== 0) {
        if (!allocated) throw this.corrupt(clusterStart, "has allocated subclusters but no host cluster");
        this.checkDataCluster(hostCluster, clusterStart);
      }
      // Whole-cluster cases first: they are by far the most common and need no per-subcluster loop.
      if (allocBits === ALL_SUBCLUSTERS) runs.add("data", from, to - from, hostCluster + (from - clusterStart));
      else if (zeroBits === ALL_SUBCLUSTERS) runs.add("zero", from, to - from, 0);
      else if (allocBits === 0 && zeroBits === 0) runs.add("unallocated", from, to - from, 0);
      else this.addSubclusters(zeroBits, allocBits, hostCluster, clusterStart, from, to, runs);
    }
  }

  private addSubclusters(
    zeroBits: number,
    allocBits: number,
    hostCluster: number,
    clusterStart: number,
    from: number,
    to: number,
    runs: RunBuilder,
  ): void {
    const subSize = this.header.clusterSize / SUBCLUSTERS;
    for (let i = Math.floor((from - clusterStart) / subSize); i < SUBCLUSTERS; i++) {
      const subStart = clusterStart + i * subSize;
      if (subStart >= to) break;
      const a = Math.max(from, subStart);
      const b = Math.min(to, subStart + subSize);
      const bit = 1 << i;
      if (allocBits & bit) runs.add("data", a, b - a, hostCluster + (a - clusterStart));
      else if (zeroBits & bit) runs.add("zero", a, b - a, 0);
      else runs.add("unallocated", a, b - a, 0);
    }
  }

  private addCompressed(
    high: number,
    low: number,
    clusterStart: number,
    from: number,
    to: number,
    runs: RunBuilder,
  ): void {
    if (this.header.hasExternalDataFile) {
      throw this.corrupt(clusterStart, "is compressed, which images with an external data file cannot have");
    }
    // Descriptor: host offset in bits 0..x-1, then (sectors - 1) up to bit 61, where x = 70 - cluster_bits.
    // x is at least 49, so the split between the two fields always lies in the high word.
    const highOffsetBits = this.compressedOffsetBits - 32;
    const hostOffset = (high & ((1 << highOffsetBits) - 1)) * TWO_POW_32 + low;
    const extraSectors = (high >>> highOffsetBits) & ((1 << (this.header.clusterBits - 8)) - 1);
    const hostBytes = (extraSectors + 1) * 512 - (hostOffset % 512);
    if (hostOffset < this.header.clusterSize || hostOffset >= this.file.size) {
      throw this.corrupt(
        clusterStart,
        `points to compressed data at host offset ${hostOffset}, outside the file's data area (file is ${this.file.size} bytes)`,
      );
    }
    runs.addCompressed(from, to - from, clusterStart, hostOffset, hostBytes);
  }

  private checkDataCluster(hostCluster: number, clusterStart: number): void {
    const { clusterSize, hasExternalDataFile } = this.header;
    if (hostCluster % clusterSize !== 0) {
      throw this.corrupt(
        clusterStart,
        `points to host offset ${hostCluster}, not aligned to the cluster size ${clusterSize}`,
      );
    }
    if (hostCluster >= this.dataSize) {
      const where = hasExternalDataFile ? "external data file" : "file";
      throw this.corrupt(
        clusterStart,
        `points to host offset ${hostCluster}, beyond the end of the ${where} (${this.dataSize} bytes)`,
      );
    }
    if (!hasExternalDataFile && hostCluster < clusterSize) {
      throw this.corrupt(clusterStart, "points into the image header");
    }
  }

  private l2TableOffset(l1Index: number): number {
    const high = this.l1.readUInt32BE(l1Index * 8);
    const low = this.l1.readUInt32BE(l1Index * 8 + 4);
    return (high & HIGH_OFFSET_MASK) * TWO_POW_32 + ((low & LOW_OFFSET_MASK) >>> 0);
  }

  /** The L2 table for L1 entry `l1Index`, or null when that entry is unallocated. */
  private l2Table(l1Index: number): Promise<Buffer | null> | null {
    const offset = this.l2TableOffset(l1Index);
    if (offset === 0) return null;
    const { clusterSize } = this.header;
    const path = this.file.path;
    const guest = l1Index * this.l2Span;
    if (offset % clusterSize !== 0) {
      throw new CorruptImageError(
        `${path}: qcow2 L2 table for guest offset ${guest} is at host offset ${offset}, not aligned to the cluster size ${clusterSize}`,
      );
    }
    if (offset + clusterSize > this.file.size) {
      throw new CorruptImageError(
        `${path}: qcow2 L2 table for guest offset ${guest} at host offset ${offset} lies beyond the end of the file (${this.file.size} bytes)`,
      );
    }
    for (const span of this.metadata) {
      if (offset < span.end && span.start < offset + clusterSize) {
        throw new CorruptImageError(
          `${path}: qcow2 L2 table for guest offset ${guest} at host offset ${offset} overlaps the ${span.what}`,
        );
      }
    }
    return this.l2Cache.get(offset, clusterSize, () =>
      this.file.readExact(offset, clusterSize, undefined, "qcow2 L2 table"),
    );
  }

  private corrupt(clusterStart: number, problem: string): CorruptImageError {
    return new CorruptImageError(`${this.file.path}: qcow2 L2 entry for guest offset ${clusterStart} ${problem}`);
  }
}

/** The builder's working copy of a run: every field of every variant, so it can be extended in place. */
interface MutableRun {
  kind: MappedRun["kind"];
  offset: number;
  length: number;
  hostOffset: number;
  clusterOffset: number;
  hostBytes: number;
}

/** Collects runs, extending the previous one when the next continues it. */
class RunBuilder {
  readonly runs: MappedRun[] = [];
  private last: MutableRun | undefined;

  add(kind: "data" | "zero" | "unallocated", offset: number, length: number, hostOffset: number): void {
    const last = this.last;
    if (
      last !== undefined &&
      last.kind === kind &&
      last.offset + last.length === offset &&
      (kind !== "data" || last.hostOffset + last.length === hostOffset)
    ) {
      last.length += length;
      return;
    }
    const run = { kind, offset, length, hostOffset, clusterOffset: 0, hostBytes: 0 };
    this.push(run);
  }

  addCompressed(offset: number, length: number, clusterOffset: number, hostOffset: number, hostBytes: number): void {
    this.push({ kind: "compressed", offset, length, clusterOffset, hostOffset, hostBytes });
  }

  private push(run: MutableRun): void {
    this.last = run;
    this.runs.push(run as MappedRun & MutableRun);
  }
}
