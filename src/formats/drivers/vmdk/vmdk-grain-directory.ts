/**
 * The two-level map of a sparse extent: the grain directory (one entry per grain table, loaded at open) and
 * the grain tables (one 32-bit entry per grain, loaded on demand and cached). An entry is the grain's sector
 * in the file; 0 means unallocated, 1 (GTE_ZEROED) means reads as zeros.
 *
 * Every table offset and grain offset is checked against the file's size when its table is loaded, so a
 * hostile table pointing outside the file is refused before any grain is read. The redundant grain directory
 * (FLAG_REDUNDANT_GRAIN_TABLE) is ignored: the primary is authoritative for every reader, and checking the copy
 * would double the metadata reads.
 */
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LruLoadCache } from "../../io/lru-load-cache.js";
import { GTE_ZEROED, SECTOR, sparseGeometry, type SparseGeometry, type SparseHeader } from "./vmdk-sparse-header.js";

/** Grain tables kept in memory: 16 MiB, i.e. 8192 default tables mapping 256 GiB of disk. */
const GRAIN_TABLE_CACHE_BYTES = 16 * 2 ** 20;

export type GrainRun =
  | { readonly kind: "unallocated" | "zero"; readonly offset: number; readonly length: number }
  /** Uncompressed grains stored contiguously: `hostOffset` is where `offset` lives in the file. */
  | { readonly kind: "data"; readonly offset: number; readonly length: number; readonly hostOffset: number }
  /** Part of one compressed grain starting at `grainOffset` in the extent, stored at `hostOffset`. */
  | {
      readonly kind: "compressed";
      readonly offset: number;
      readonly length: number;
      readonly grainOffset: number;
      readonly hostOffset: number;
    };

export class GrainDirectory {
  readonly geometry: SparseGeometry;
  private readonly tables: LruLoadCache<number, Uint32Array>;

  private constructor(
    private readonly file: ImageInput,
    private readonly header: SparseHeader,
    private readonly directory: Uint32Array,
    /** Smallest bytes a grain occupies from its start (a marker for compressed grains, else one byte). */
    private readonly minGrainBytes: number,
  ) {
    this.geometry = sparseGeometry(header);
    this.tables = new LruLoadCache(Math.max(GRAIN_TABLE_CACHE_BYTES, 4 * this.geometry.gtBytes));
  }

  /** Reads the directory at `gdSector` (the header's, or the footer's for a streamOptimized file). */
  static async load(file: ImageInput, header: SparseHeader, gdSector: number): Promise<GrainDirectory> {
    const geometry = sparseGeometry(header);
    const bytes = geometry.gtCount * 4;
    const raw = await file.readExact(gdSector * SECTOR, bytes, undefined, "grain directory");
    const directory = new Uint32Array(geometry.gtCount);
    for (let i = 0; i < geometry.gtCount; i++) {
      const entry = raw.readUInt32LE(i * 4);
      if (entry !== 0 && entry * SECTOR + geometry.gtBytes > file.size) {
        throw new CorruptImageError(
          `${file.path}: grain directory entry ${i} points to a grain table at sector ${entry}, outside the ` +
            `file (${file.size} bytes)`,
        );
      }
      directory[i] = entry;
    }
    const compressed = header.compressAlgorithm !== 0;
    return new GrainDirectory(file, header, directory, compressed ? 12 : 1);
  }

  /** True when grain table `index` exists (a missing one maps its whole span as unallocated). */
  hasTable(index: number): boolean {
    return (this.directory[index] ?? 0) !== 0;
  }

  /** Grain table `index`, loaded and checked on first use. */
  table(index: number): Promise<Uint32Array> {
    const sector = this.directory[index]!;
    return this.tables.get(index, this.geometry.gtBytes, async () => {
      const { gtBytes } = this.geometry;
      const raw = await this.file.readExact(sector * SECTOR, gtBytes, undefined, `grain table ${index}`);
      const entries = new Uint32Array(this.header.gtesPerGt);
      const limit = this.file.size - this.minGrainBytes;
      for (let i = 0; i < entries.length; i++) {
        const entry = raw.readUInt32LE(i * 4);
        if (entry > GTE_ZEROED && entry * SECTOR > limit) {
          throw new CorruptImageError(
            `${this.file.path}: grain table ${index} entry ${i} points to sector ${entry}, outside the file ` +
              `(${this.file.size} bytes)`,
          );
        }
        entries[i] = entry;
      }
      return entries;
    });
  }

  /**
   * The runs covering `length` bytes from extent offset `offset`, in order. Neighbouring uncompressed grains
   * stored back to back become one data run, so a read turns into few large file reads.
   */
  async map(offset: number, length: number): Promise<GrainRun[]> {
    const { grainSize, gtSpan } = this.geometry;
    const runs: GrainRun[] = [];
    const end = offset + length;
    const compressed = this.header.compressAlgorithm !== 0;
    const push = (run: GrainRun) => {
      const last = runs[runs.length - 1];
      if (last && last.kind === run.kind && last.offset + last.length === run.offset) {
        if (run.kind === "unallocated" || run.kind === "zero") {
          runs[runs.length - 1] = { ...last, length: last.length + run.length };
          return;
        }
        if (run.kind === "data" && last.kind === "data" && last.hostOffset + last.length === run.hostOffset) {
          runs[runs.length - 1] = { ...last, length: last.length + run.length };
          return;
        }
      }
      runs.push(run);
    };
    let pos = offset;
    while (pos < end) {
      const tableIndex = Math.floor(pos / gtSpan);
      const tableEnd = Math.min(end, (tableIndex + 1) * gtSpan);
      if (!this.hasTable(tableIndex)) {
        push({ kind: "unallocated", offset: pos, length: tableEnd - pos });
        pos = tableEnd;
        continue;
      }
      const table = await this.table(tableIndex);
      while (pos < tableEnd) {
        const grainStart = pos - (pos % grainSize);
        const pieceEnd = Math.min(tableEnd, grainStart + grainSize);
        const entry = table[(grainStart - tableIndex * gtSpan) / grainSize]!;
        const piece = { offset: pos, length: pieceEnd - pos };
        if (entry === 0) push({ kind: "unallocated", ...piece });
        else if (entry === GTE_ZEROED) push({ kind: "zero", ...piece });
        else if (compressed) {
          push({ kind: "compressed", ...piece, grainOffset: grainStart, hostOffset: entry * SECTOR });
        } else push({ kind: "data", ...piece, hostOffset: entry * SECTOR + (pos - grainStart) });
        pos = pieceEnd;
      }
    }
    return runs;
  }

  clear(): void {
    this.tables.clear();
  }
}
