/**
 * A VMDK disk opened for reading: a sparse file that is its own single extent (monolithicSparse,
 * streamOptimized, a header-v1 Bochs disk), or a descriptor file and the extents it lists. Reads are split at
 * extent boundaries and each extent serves its part; several reads may run at once. Delta disks (with a
 * parent) are refused: their unallocated grains would have to come from another file.
 *
 * A descriptor's extents are opened through the engine's reference opener, so only a descriptor read from a
 * local file can have any: one inside an archive or behind a URL has no folder its extents could be in.
 *
 * From an input read once in order (a pipe) only a streamOptimized file can be read (vmdk-stream-source.ts);
 * the other layouts are refused as needing random access.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import { ExtentMerger, checkDiskRange, readDestination, settleAll } from "../../engine/source-ranges.js";
import { buildOn, type ImageInput } from "../../inputs/image-input.js";
import { requireRandomAccess } from "../../inputs/require-random-access.js";
import { rangeIndex } from "../../io/range-index.js";
import { LIMITS } from "../../limits.js";
import type { DriverOpenContext, Extent, ImageDetails, ImageSource } from "../../types.js";
import {
  descriptorFacts,
  descriptorText,
  looksLikeDescriptor,
  parseDescriptor,
  refuseDelta,
  type VmdkDescriptor,
} from "./vmdk-descriptor.js";
import type { VmdkExtent } from "./vmdk-extent.js";
import { openDescriptorExtents } from "./vmdk-extent-resolution.js";
import { COWD_MAGIC, SECTOR, SPARSE_MAGIC, isCompressed, parseSparseHeader } from "./vmdk-sparse-header.js";
import { SparseExtent } from "./vmdk-sparse-extent.js";
import { StreamOptimizedSource } from "./vmdk-stream-source.js";
import { isStreamOptimized } from "./vmdk-stream-walker.js";

/** Bytes of a pipe's head looked at to tell a descriptor file (as the driver's probe does). */
const DESCRIPTOR_HEAD = 4096;

/** Extents are mapped in pieces of this many bytes so a huge sparse disk's map is produced lazily. */
const MAP_PIECE = 4 * 2 ** 30;

export class VmdkSource implements ImageSource {
  readonly format = "vmdk";
  readonly virtualSize: number;
  /** Disk offset where each extent starts, plus the disk's end. */
  private readonly starts: number[];
  private detailsPromise: Promise<ImageDetails> | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly descriptor: VmdkDescriptor | undefined,
    private readonly extentsList: readonly VmdkExtent[],
    /** The descriptor file, when the disk has one separate from its extents. */
    private readonly descriptorFile: ImageInput | undefined,
  ) {
    this.starts = [0];
    for (const e of extentsList) this.starts.push(this.starts[this.starts.length - 1]! + e.length);
    this.virtualSize = this.starts[this.starts.length - 1]!;
  }

  static async open(file: ImageInput, context: DriverOpenContext): Promise<ImageSource> {
    if (file.sequential) return openInOrder(file);
    const path = file.path;
    let keepFile = false;
    try {
      if (await isSparseFile(file)) {
        keepFile = true;
        return await VmdkSource.fromSparseFile(file, path);
      }
      if (file.size > LIMITS.maxHeaderBytes) {
        throw new CorruptImageError(
          `${path}: not a VMDK sparse file, and too large (${file.size} bytes) for a VMDK descriptor file`,
        );
      }
      const text = descriptorText(await file.readExact(0, file.size, undefined, "descriptor"), path);
      const descriptor = parseDescriptor(text, path);
      if (descriptor.createType === undefined) {
        throw new CorruptImageError(`${path}: VMDK descriptor has no createType`);
      }
      refuseDelta(path, descriptor);
      const extents = await openDescriptorExtents(file, descriptor, context.references);
      const total = extents.reduce((n, e) => n + e.length, 0);
      if (total > LIMITS.maxVirtualSize) {
        await Promise.allSettled(extents.map((e) => e.close()));
        throw new CorruptImageError(`${path}: the extents add up to ${total} bytes, beyond the size limit`);
      }
      keepFile = true;
      return new VmdkSource(path, descriptor, extents, file);
    } finally {
      if (!keepFile) await file.close().catch(() => undefined);
    }
  }

  /**
   * A disk that is one sparse file (its own single extent) read from `input`, which the source owns from now
   * on: it is closed with the source, or before this returns if opening fails.
   */
  static async fromSparseFile(input: ImageInput, path: string): Promise<VmdkSource> {
    let extent: SparseExtent;
    try {
      extent = await SparseExtent.open(input);
    } catch (e) {
      await input.close().catch(() => undefined);
      throw e;
    }
    try {
      if (extent.header.capacity === 0) {
        throw new UnsupportedFeatureError(
          `${path}: sparse extent of capacity 0 (a descriptor embedded in a sparse file) is not supported`,
        );
      }
      const descriptor = extent.descriptor === undefined ? undefined : parseDescriptor(extent.descriptor, path);
      if (descriptor) refuseDelta(path, descriptor);
      return new VmdkSource(path, descriptor, [extent], undefined);
    } catch (e) {
      await extent.close().catch(() => undefined);
      throw e;
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.path, offset, length, this.virtualSize);
    const out = readDestination(this.path, length, into);
    const jobs: Promise<void>[] = [];
    for (let i = rangeIndex(this.starts, offset), pos = offset; pos < offset + length; i++) {
      const end = Math.min(offset + length, this.starts[i + 1]!);
      jobs.push(this.extentsList[i]!.read(pos - this.starts[i]!, out.subarray(pos - offset, end - offset)));
      pos = end;
    }
    await settleAll(jobs);
    return out;
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.path, offset, length, this.virtualSize);
    const merger = new ExtentMerger();
    const end = offset + length;
    for (let i = rangeIndex(this.starts, offset), pos = offset; pos < end; i++) {
      const extentEnd = Math.min(end, this.starts[i + 1]!);
      const base = this.starts[i]!;
      for (let piece = pos; piece < extentEnd; piece = Math.min(extentEnd, piece + MAP_PIECE)) {
        const pieceEnd = Math.min(extentEnd, piece + MAP_PIECE);
        for (const run of await this.extentsList[i]!.runs(piece - base, pieceEnd - piece)) {
          yield* merger.add(run.offset + base, run.length, run.kind);
        }
      }
      pos = extentEnd;
    }
    yield* merger.flush();
  }

  details(): Promise<ImageDetails> {
    return (this.detailsPromise ??= this.computeDetails());
  }

  private async computeDetails(): Promise<ImageDetails> {
    let allocatedBytes = 0;
    for await (const e of this.extents()) if (e.kind === "data") allocatedBytes += e.length;
    const files = new Map<string, ImageInput>();
    if (this.descriptorFile) files.set(this.descriptorFile.path, this.descriptorFile);
    for (const e of this.extentsList) if (e.file) files.set(e.file.path, e.file);
    let actualSize = 0;
    for (const f of files.values()) actualSize += f.allocatedSize;
    const sparse = this.extentsList.find((e): e is SparseExtent => e instanceof SparseExtent);
    const d = this.descriptor;
    const formatSpecific: Record<string, string | number | boolean> = {
      createType: d?.createType ?? (sparse && isCompressed(sparse.header) ? "streamOptimized" : "monolithicSparse"),
      extents: this.extentsList.length,
    };
    if (sparse) formatSpecific.headerVersion = sparse.header.version;
    Object.assign(formatSpecific, descriptorFacts(d));
    if (sparse?.header.uncleanShutdown) formatSpecific.uncleanShutdown = true;
    return {
      format: "vmdk",
      virtualSize: this.virtualSize,
      actualSize,
      allocatedBytes,
      clusterSize: sparse ? sparse.header.grainSectors * SECTOR : undefined,
      compression: sparse && isCompressed(sparse.header) ? "deflate" : undefined,
      formatSpecific,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.extentsList.map((e) => e.close()), this.descriptorFile?.close()]);
  }
}

/**
 * Opens a VMDK from an input that can be read only once in order: only a streamOptimized file can be (its
 * grains say where they belong as they come); a descriptor names other files, and a monolithicSparse file's
 * grains may lie anywhere, so both need random access.
 */
async function openInOrder(input: ImageInput): Promise<ImageSource> {
  const header = await buildOn(input, async () => {
    if (!(await isSparseFile(input))) {
      if (looksLikeDescriptor(await input.readPadded(0, DESCRIPTOR_HEAD)))
        requireRandomAccess(input, "VMDK descriptor");
      throw new CorruptImageError(`${input.path}: not a VMDK: neither a sparse extent ("KDMV") nor a descriptor`);
    }
    const header = parseSparseHeader(await input.readExact(0, SECTOR, undefined, "sparse extent header"), input.path);
    if (!isStreamOptimized(header)) requireRandomAccess(input, "monolithicSparse VMDK");
    return header;
  });
  return StreamOptimizedSource.open(input, header);
}

/** A sparse file ("KDMV", or ESX's "COWD", which the header parser refuses clearly) rather than a descriptor. */
async function isSparseFile(input: ImageInput): Promise<boolean> {
  const magic = input.size >= 4 ? (await input.readExact(0, 4)).readUInt32LE(0) : 0;
  return magic === SPARSE_MAGIC || magic === COWD_MAGIC;
}
