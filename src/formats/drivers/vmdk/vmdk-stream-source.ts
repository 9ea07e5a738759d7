/**
 * A streamOptimized VMDK read from an input that can be read only once, in order (standard input, a disk of an
 * OVA arriving on it): what `chromogenic convert - …` reads such a disk with. The stream is its own allocation
 * map: extents() walks it (StreamOptimizedWalker), yielding each run of grains as data as soon as its grains
 * have been met and each stretch between them as unallocated; read() serves the convert pipeline's reads,
 * which follow that map in order, from the grains just met, inflated on the threadpool.
 *
 * How the pipeline calls it (engine/convert.ts): it takes an extent, starts reading it at once without waiting,
 * and takes the next, until `readAhead` reads are in flight. So the walk is never more than a run of grains
 * ahead of the reads, and memory stays bounded whatever the disk's size: runs are yielded in pieces of at
 * most RUN_BYTES, a read releases every grain before it, and grains that nobody reads (a walk for `info`, a
 * caller that lags) are dropped beyond WINDOW_BYTES. The map can be walked once, and reads must come in
 * increasing order behind it; anything else is refused with a message that says so.
 */
import { UnsupportedFeatureError, UsageError } from "../../errors.js";
import { checkDiskRange, readDestination, settleAll } from "../../engine/source-ranges.js";
import { buildOn, type ImageInput } from "../../inputs/image-input.js";
import type { Extent, ExtentKind, ImageDetails, ImageSource } from "../../types.js";
import { inflateGrain } from "./vmdk-compressed-grains.js";
import { descriptorFacts, parseDescriptor, refuseDelta, type VmdkDescriptor } from "./vmdk-descriptor.js";
import { SECTOR, type SparseHeader } from "./vmdk-sparse-header.js";
import { StreamOptimizedWalker, type StreamGrain } from "./vmdk-stream-walker.js";

/**
 * Longest run of grains yielded as one extent, and the boundary runs are cut at: a multiple of it never
 * straddles one of the pipeline's chunks (1 or 4 MiB), so each run is read with one request.
 */
const RUN_BYTES = 2 ** 20;
/** Bytes of grains (compressed, and inflated once read) held for reads still to come. */
const WINDOW_BYTES = 32 * 2 ** 20;

interface HeldGrain extends StreamGrain {
  inflated?: Promise<Buffer>;
}

type WalkState = "not started" | "walking" | "done";

export class StreamOptimizedSource implements ImageSource {
  readonly format = "vmdk";
  readonly virtualSize: number;
  private readonly grainSize: number;
  /** Grains met and not yet released, by disk offset, in increasing order (a Map keeps insertion order). */
  private readonly held = new Map<number, HeldGrain>();
  private heldBytes = 0;
  /** Where the map yielded so far ends: reads may not go beyond it. */
  private mappedTo = 0;
  /** Reads may not start before this: the grains there were released. */
  private releasedTo = 0;
  private walk: WalkState = "not started";
  private dataBytes = 0;
  private detailsPromise: Promise<ImageDetails> | undefined;

  private constructor(
    private readonly input: ImageInput,
    private readonly walker: StreamOptimizedWalker,
    private readonly descriptor: VmdkDescriptor | undefined,
  ) {
    this.virtualSize = walker.header.capacity * SECTOR;
    this.grainSize = walker.header.grainSectors * SECTOR;
  }

  /**
   * Opens the streamOptimized file `input` whose first sector is `header`. The source owns the input: it is
   * closed with the source, or before this rejects.
   */
  static open(input: ImageInput, header: SparseHeader): Promise<StreamOptimizedSource> {
    return buildOn(input, async () => {
      if (header.capacity === 0) {
        throw new UnsupportedFeatureError(`${input.path}: a streamOptimized extent of capacity 0 is not supported`);
      }
      const walker = await StreamOptimizedWalker.open(input, header);
      const descriptor = walker.descriptor === undefined ? undefined : parseDescriptor(walker.descriptor, input.path);
      if (descriptor) refuseDelta(input.path, descriptor);
      return new StreamOptimizedSource(input, walker, descriptor);
    });
  }

  private get path(): string {
    return this.input.path;
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.path, offset, length, this.virtualSize);
    this.startWalk("its allocation map");
    const end = offset + length;
    for await (const e of this.walkMap(true)) {
      const from = Math.max(offset, e.offset);
      const to = Math.min(end, e.offset + e.length);
      if (from < to) yield { offset: from, length: to - from, kind: e.kind };
      if (e.offset + e.length >= end) return;
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.path, offset, length, this.virtualSize);
    const out = readDestination(this.path, length, into);
    if (length === 0) return out;
    const end = offset + length;
    if (offset < this.releasedTo) {
      throw new UsageError(
        `${this.path}: a read at disk offset ${offset} comes after the stream moved past it (to ${this.releasedTo}); ` +
          "an image read once in order is read in increasing order, following its allocation map",
      );
    }
    if (end > this.mappedTo) {
      throw new UsageError(
        `${this.path}: a read up to disk offset ${end} is ahead of the allocation map walked so far (to ` +
          `${this.mappedTo}); an image read once in order is read following its map`,
      );
    }
    this.release(offset);
    const jobs: Promise<void>[] = [];
    let filled = offset;
    for (const grain of this.held.values()) {
      if (grain.offset >= end) break;
      const from = Math.max(offset, grain.offset);
      const to = Math.min(end, grain.offset + this.grainSize);
      // Between the grains held, nothing was stored: those bytes read as zeros.
      out.fill(0, filled - offset, from - offset);
      const target = out.subarray(from - offset, to - offset);
      jobs.push(this.inflated(grain).then((data) => void data.copy(target, 0, from - grain.offset, to - grain.offset)));
      filled = to;
    }
    out.fill(0, filled - offset, length);
    await settleAll(jobs);
    return out;
  }

  details(): Promise<ImageDetails> {
    return (this.detailsPromise ??= this.computeDetails());
  }

  async close(): Promise<void> {
    this.held.clear();
    this.heldBytes = 0;
    await this.input.close();
  }

  private async computeDetails(): Promise<ImageDetails> {
    if (this.walk === "not started") {
      this.startWalk("its details");
      for await (const _ of this.walkMap(false));
    }
    if (this.walk !== "done") {
      throw new UsageError(`${this.path}: the size of its data is known only once the whole stream has been read`);
    }
    const { header } = this.walker;
    return {
      format: "vmdk",
      virtualSize: this.virtualSize,
      actualSize: this.input.allocatedSize,
      allocatedBytes: this.dataBytes,
      clusterSize: this.grainSize,
      compression: "deflate",
      formatSpecific: {
        createType: this.descriptor?.createType ?? "streamOptimized",
        extents: 1,
        headerVersion: header.version,
        ...descriptorFacts(this.descriptor),
        ...(header.uncleanShutdown ? { uncleanShutdown: true } : {}),
      },
    };
  }

  /** Claims the one walk of the stream there can be; `what` says who wanted a second one. */
  private startWalk(what: string): void {
    if (this.walk !== "not started") {
      throw new UsageError(
        `${this.path}: ${what} cannot be read: the stream was already read once, and an input read in order ` +
          "cannot be read again; save it to a file and read it from there",
      );
    }
    this.walk = "walking";
  }

  /**
   * The whole disk's map, as the stream reveals it: runs of grains (cut at RUN_BYTES boundaries) as data and
   * the stretches between them as unallocated. With `hold`, the grains are kept for read().
   */
  private async *walkMap(hold: boolean): AsyncGenerator<Extent> {
    let mapped = 0;
    let run: { offset: number; length: number } | undefined;
    for (let grain = await this.walker.next(); grain; grain = await this.walker.next()) {
      const start = grain.offset;
      const end = Math.min(this.virtualSize, start + this.grainSize);
      if (run && (start !== run.offset + run.length || start % RUN_BYTES === 0)) {
        yield this.mapped(run.offset, run.length, "data");
        run = undefined;
      }
      if (start > mapped) yield this.mapped(mapped, start - mapped, "unallocated");
      if (hold) this.hold(grain);
      this.dataBytes += end - start;
      run = run ? { offset: run.offset, length: run.length + end - start } : { offset: start, length: end - start };
      mapped = end;
    }
    if (run) yield this.mapped(run.offset, run.length, "data");
    if (mapped < this.virtualSize) yield this.mapped(mapped, this.virtualSize - mapped, "unallocated");
    this.walk = "done";
  }

  private mapped(offset: number, length: number, kind: ExtentKind): Extent {
    this.mappedTo = offset + length;
    return { offset, length, kind };
  }

  private hold(grain: StreamGrain): void {
    this.held.set(grain.offset, { ...grain });
    this.heldBytes += grain.compressed.length;
    // A caller that maps without reading, or lags far behind, does not make the walk keep every grain.
    for (const [offset, oldest] of this.held) {
      if (this.heldBytes <= WINDOW_BYTES || offset === grain.offset) break;
      this.drop(oldest);
      this.releasedTo = Math.max(this.releasedTo, offset + this.grainSize);
    }
  }

  /** Releases the grains that end at or before `offset`: reads to come start there or later. */
  private release(offset: number): void {
    for (const grain of this.held.values()) {
      if (grain.offset + this.grainSize > offset) break;
      this.drop(grain);
    }
    this.releasedTo = Math.max(this.releasedTo, offset);
  }

  private drop(grain: HeldGrain): void {
    this.held.delete(grain.offset);
    this.heldBytes -= grain.compressed.length + (grain.inflated ? this.grainSize : 0);
  }

  private inflated(grain: HeldGrain): Promise<Buffer> {
    if (!grain.inflated) {
      this.heldBytes += this.grainSize;
      const where = `${this.path}: the compressed grain at stream offset ${grain.inputOffset}`;
      grain.inflated = inflateGrain(grain.compressed, this.grainSize, where);
    }
    return grain.inflated;
  }
}
