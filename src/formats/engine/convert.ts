import { realpath } from "node:fs/promises";
import type { Extent, FormatDriver, ImageSource, ImageTarget, ReferencePolicy } from "../types.js";
import type { OutputFormatChoice } from "../create-options-for.js";
import { AbortedError, UsageError } from "../errors.js";
import { getDriver } from "../registry.js";
import { openOutputFile } from "../io/open-output.js";
import type { FileOutput } from "../io/output-file.js";
import { outputModeFor } from "../io/output-mode.js";
import { withForceShare } from "../io/force-share.js";
import { openImage, type ImageLocation } from "./open-image.js";
import { isLocalLocation, locationForMessages } from "../inputs/open-input.js";
import { recogniseInput } from "./recognise-input.js";
import type { ManifestCheck } from "../ova/manifest-check.js";
import { zeroRuns } from "./zero-runs.js";
import { largeRequestsAreSplit } from "../io/positional-io.js";
import { ProgressMeter } from "../../util/progress-meter.js";
import type { ProgressListener } from "../../util/events.js";

/**
 * The convert pipeline: walks the source's allocation map in disk order, reads data ahead in parallel,
 * splits zero runs out at the target's granularity, and hands extents to the target in order.
 * It knows no format's internals; drivers do all format work behind ImageSource / ImageTarget.
 */

export interface PipelineOptions {
  readonly signal?: AbortSignal;
  /** Progress of the `convert` phase: data bytes read of the data the source holds, and how far into the disk. */
  readonly onProgress?: ProgressListener;
  /**
   * The data bytes the source holds (the total of its data extents), when the caller knows them or can count
   * them alongside: progress then has a total and an ETA. Without it, the total is known only at the end.
   */
  readonly dataTotal?: number | Promise<number | undefined>;
  /** Bytes read per request; reads never cross a multiple of it. Default 4 MiB, or 1 MiB without block-io. */
  readonly chunkSize?: number;
  /** Data reads in flight ahead of the writer. Default 2 (4 MiB pieces) or 4 (1 MiB). */
  readonly readAhead?: number;
  /** With a pipelined target: pieces handed to it whose buffers it may still hold. Default 3 (4 MiB) or 6. */
  readonly writesInFlight?: number;
  /**
   * Overwrites each read buffer with garbage as soon as the target has accepted it. For tests: proves a target
   * honours the ImageTarget contract of never touching `data` after writeData resolves.
   */
  readonly poisonBuffersAfterWrite?: boolean;
}

export interface ConvertStats {
  readonly virtualSize: number;
  /** Bytes read from the source (its data extents). */
  readonly bytesRead: number;
  /** Bytes handed to the target as data (after zero detection). */
  readonly dataBytes: number;
  readonly seconds: number;
}

/** How much the pipeline moves per request and how many requests it keeps going. */
interface PipelineShape {
  readonly chunk: number;
  readonly readAhead: number;
  readonly writesInFlight: number;
}

/**
 * With the block-io addon, 4 MiB pieces, 2 reads ahead and 3 pieces in a pipelined target's hands. The addon
 * reads and writes a piece as 1 MiB system calls in one threadpool task: a quarter of the round trips between
 * threads, and of the main thread's work per byte. Fewer requests in flight than with 1 MiB pieces, because on
 * two cores more of them only made the threads contend: concurrent writes to one file spin on its inode lock,
 * and more buffers in flight made the kernel's copies miss the CPU's cache. Measured on the benchmark disk
 * (raw→qcow2, 2 threadpool threads): 0.30–0.31 s, against 0.33–0.34 s for 1 MiB pieces with 4 reads ahead and
 * 6 held; zstd output is as fast with 3 held (1.13 s) as with 6.
 */
const SPLIT_SHAPE: PipelineShape = { chunk: 4 * 2 ** 20, readAhead: 2, writesInFlight: 3 };
/**
 * Without the addon, 1 MiB pieces: each is one system call, and multi-MiB calls made this kernel (which caches
 * files in large folios) take several times its usual time in about one run of three. 6 held pieces keep both
 * cores compressing zstd batches (1.19 s with 4, 1.13 s with 6).
 */
const UNSPLIT_SHAPE: PipelineShape = { chunk: 2 ** 20, readAhead: 4, writesInFlight: 6 };
/** Zero pieces queued are cheap, but a map of millions of tiny extents must not pile up in memory. */
const MAX_QUEUED_PIECES = 256;

/** A piece handed to a pipelined target: its buffer returns to the pool once `written` resolves. */
interface Written {
  readonly written: Promise<void>;
  readonly buffer?: Buffer;
}

interface Piece {
  readonly extent: Extent;
  readonly data?: Promise<Buffer>;
  /** The pooled buffer the data is read into, returned to the pool once the target has taken the data. */
  readonly buffer?: Buffer;
}

/** Extents cut so no data piece crosses a chunk boundary (boundaries are disk offsets, multiples of `chunk`). */
async function* pieces(source: ImageSource, chunk: number): AsyncGenerator<Extent> {
  for await (const extent of source.extents()) {
    if (extent.kind !== "data") {
      yield extent;
      continue;
    }
    let pos = extent.offset;
    const end = extent.offset + extent.length;
    while (pos < end) {
      const next = Math.min(end, (Math.floor(pos / chunk) + 1) * chunk);
      yield { offset: pos, length: next - pos, kind: "data" };
      pos = next;
    }
  }
}

/**
 * The bytes of `source`'s data extents, what a conversion reads: a second walk of its map, for a source that
 * can be walked twice (not one read once in order), undefined if the walk fails (the conversion will say why).
 */
export async function countData(source: ImageSource): Promise<number | undefined> {
  try {
    let total = 0;
    for await (const e of source.extents()) if (e.kind === "data") total += e.length;
    return total;
  } catch {
    return undefined;
  }
}

/**
 * The data count of a source opened from `location`, for a caller that listens to progress: a local file's map
 * is metadata on this host, walked alongside the conversion; a URL's or a pipe's is not walked twice.
 */
export function countLocalData(
  location: ImageLocation | ImageSource,
  source: ImageSource,
  options: PipelineOptions,
): Promise<number | undefined> | undefined {
  const local = typeof location === "string" && isLocalLocation(location);
  return options.dataTotal === undefined && local && options.onProgress ? countData(source) : undefined;
}

/** Copies every byte of `source` into `target` and finishes the target. The caller owns both. */
export async function convertImage(
  source: ImageSource,
  target: ImageTarget,
  options: PipelineOptions = {},
): Promise<ConvertStats> {
  const started = performance.now();
  const shape = largeRequestsAreSplit() ? SPLIT_SHAPE : UNSPLIT_SHAPE;
  const chunk = options.chunkSize ?? shape.chunk;
  const readAhead = Math.max(1, options.readAhead ?? shape.readAhead);
  // A pipelined target writes while we read on: one write at a time left the two cores half idle (a bare
  // read/write loop over the benchmark disk took 0.32 s with one write in flight and 0.27 s with two or more).
  const writesInFlight = target.pipelined ? Math.max(1, options.writesInFlight ?? shape.writesInFlight) : 1;
  const writing: Written[] = [];
  const meter = new ProgressMeter({
    phase: "convert",
    total: null,
    virtualSize: source.virtualSize,
    listener: options.onProgress,
  });
  if (typeof options.dataTotal === "number") meter.setTotal(options.dataTotal);
  else options.dataTotal?.then((total) => total !== undefined && meter.setTotal(total)).catch(() => undefined);
  const iterator = pieces(source, chunk)[Symbol.asyncIterator]();
  const { signal } = options;
  const queue: Piece[] = [];
  // Read buffers are recycled: a fresh chunk-sized allocation per read costs a page fault per 4 KiB touched, which
  // showed up as most of the system time of an uncompressed conversion. readAhead reads + the pieces being
  // written is all that can be live at once.
  const pool: Buffer[] = [];
  const takeBuffer = () => pool.pop() ?? Buffer.allocUnsafeSlow(chunk);
  /** Waits until the target is done with a piece, then recycles its buffer. */
  const release = async (piece: Written) => {
    await piece.written;
    // The target is done with the buffer once its last call resolved (ImageTarget's ownership rule).
    if (!piece.buffer) return;
    if (options.poisonBuffersAfterWrite) piece.buffer.fill(0xa5);
    pool.push(piece.buffer);
  };
  let readsInFlight = 0;
  let exhausted = false;
  let bytesRead = 0;
  let dataBytes = 0;
  let expected = 0;

  const refill = async () => {
    while (!exhausted && !signal?.aborted && readsInFlight < readAhead && queue.length < MAX_QUEUED_PIECES) {
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const extent = next.value;
      if (extent.kind === "data") {
        const buffer = takeBuffer();
        const data = source.read(extent.offset, extent.length, buffer);
        data.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
        readsInFlight++;
        queue.push({ extent, data, buffer });
      } else {
        queue.push({ extent });
      }
    }
  };

  try {
    for (;;) {
      if (signal?.aborted) throw new AbortedError();
      await unlessAborted(refill(), signal);
      const piece = queue.shift();
      if (!piece) break;
      const { extent } = piece;
      if (extent.offset !== expected) {
        throw new Error(
          `${source.format} allocation map skips or overlaps at offset ${expected} (got ${extent.offset})`,
        );
      }
      expected = extent.offset + extent.length;
      let written: Promise<void>;
      if (!piece.data) {
        written = target.writeZeroes(extent.offset, extent.length, extent.kind === "zero" ? "zero" : "unallocated");
      } else {
        const buf = await unlessAborted(piece.data, signal);
        readsInFlight--;
        bytesRead += buf.length;
        const calls: Promise<void>[] = [];
        for (const run of zeroRuns(buf, extent.offset, target.granularity)) {
          const slice = buf.subarray(run.offset - extent.offset, run.offset - extent.offset + run.length);
          if (run.zero) {
            calls.push(target.writeZeroes(run.offset, run.length, "zero"));
          } else {
            dataBytes += run.length;
            calls.push(target.writeData(run.offset, slice));
          }
          // A target that is not pipelined takes one call at a time.
          if (!target.pipelined) await calls[calls.length - 1];
        }
        written = calls.length === 1 ? calls[0]! : Promise.all(calls).then(() => undefined);
      }
      // Awaited in order below (or by the failure path); until then a rejection must not count as unhandled.
      written.catch(() => undefined);
      writing.push({ written, buffer: piece.buffer });
      while (writing.length >= writesInFlight) await release(writing.shift()!);
      if (piece.data) meter.advance(extent.length);
      else meter.skip(extent.length);
    }
    while (writing.length > 0) await release(writing.shift()!);
    if (expected !== source.virtualSize) {
      throw new Error(
        `${source.format} allocation map ends at ${expected}, before the disk's end ${source.virtualSize}`,
      );
    }
    await target.finish();
  } catch (e) {
    // A cancelled walk may be stuck in a read that never ends: its generator cannot return until it does.
    const closed = iterator.return?.(undefined).catch(() => undefined);
    if (!signal?.aborted) await closed;
    await target.abort().catch(() => undefined);
    // The target holds no buffer after abort(); wait for calls still settling so none outlives this call.
    await Promise.allSettled(writing.map((w) => w.written));
    throw e;
  }
  meter.complete();
  return { virtualSize: source.virtualSize, bytesRead, dataBytes, seconds: (performance.now() - started) / 1000 };
}

/**
 * With `outputFormat` written out (`"qcow2"`), `createOptions` must be that format's: `{ cluster_size: "64k" }`
 * compiles, `{ clusterSize: "64k" }` does not.
 */
export interface ConvertFileRequest<F extends string = string> extends PipelineOptions, OutputFormatChoice<F> {
  /**
   * A local path or device, an http(s) URL, "-" for standard input, or an input already open (this closes it).
   * An OVA is recognised as such (unless `inputFormat` is given): one of its disks is converted.
   */
  readonly input: ImageLocation;
  readonly output: string;
  /** Input format; detected from content when absent. */
  readonly inputFormat?: string;
  /** With an OVA input: which disk of the appliance to convert, 1-based (default 1); refused for other inputs. */
  readonly disk?: number;
  /** With an OVA input: verify its manifest alongside the conversion (default true when it has one). */
  readonly verifyManifest?: boolean;
  /** Told each warning as soon as it is known (with an OVA: the files its manifest does not cover, …). */
  readonly onWarning?: (text: string) => void;
  /** Driver-specific options for opening the input (OpenOptions.driverOptions). */
  readonly inputOptions?: Readonly<Record<string, string>>;
  readonly references?: ReferencePolicy;
  /**
   * fsync the output before it takes its name (default true), so a crash right after we report success cannot
   * leave an empty or partial file under the final name. qemu-img does not sync by default.
   */
  readonly sync?: boolean;
  /**
   * The temporary name the output may have before it is complete (default: a fresh hidden name beside `output`),
   * for callers that record it before it exists so that a run killed with SIGKILL can still be cleaned up.
   */
  readonly temporaryPath?: string;
  /**
   * The output exists (a file or block device) and is written where it is, not created or replaced
   * (qemu-img convert -n). A block device is always written in place.
   */
  readonly inPlace?: boolean;
  /** Read the input even while another process writes it, taking no lock (qemu-img -U). */
  readonly forceShare?: boolean;
}

export interface ConvertFileResult extends ConvertStats {
  /** The input's format; for an OVA's disk, "ova/" and the disk's format ("ova/vmdk"). */
  readonly inputFormat: string;
  readonly outputFormat: string;
  readonly output: string;
  /** With an OVA input: the disk converted. */
  readonly disk?: number;
  /** With an OVA input: the manifest as verified, null when the OVA has none (or it was not verified). */
  readonly manifest?: ManifestCheck | null;
  /** With an OVA input: what the reader let pass but the user should know (also told through onWarning). */
  readonly warnings?: readonly string[];
}

/**
 * Converts one image file into another, or one disk of an OVA into an image file. The output is checked and locked
 * before the input is opened, and takes its name only when complete (io/open-output.ts): an error or cancellation
 * leaves the output's name as it was.
 */
export async function convertFile<const F extends string>(request: ConvertFileRequest<F>): Promise<ConvertFileResult> {
  const { input } = request;
  const outDriver = getDriver(request.outputFormat);
  if (!outDriver.create) {
    if (typeof input !== "string") await input.close();
    throw new UsageError(`format ${outDriver.name} cannot be written`);
  }
  let output: FileOutput;
  try {
    if (typeof input === "string" && isLocalLocation(input)) {
      const inputReal = await realpath(input);
      const outputReal = await realpath(request.output).catch(() => null);
      if (outputReal === inputReal) throw new UsageError(`output ${request.output} is the input itself`);
    }
    output = await openOutputFile(request.output, {
      inPlace: request.inPlace,
      mode: await outputModeFor(typeof input === "string" ? input : input.localPath),
      temporaryPath: request.temporaryPath,
    });
  } catch (e) {
    if (typeof input !== "string") await input.close();
    throw e;
  }
  try {
    return await withForceShare(request.forceShare, () => convertInto(output, outDriver, request));
  } finally {
    await output.discard();
  }
}

/** convertFile's work once its output is open: the input recognised, opened and converted into `output`. */
async function convertInto(
  output: FileOutput,
  outDriver: FormatDriver,
  request: ConvertFileRequest,
): Promise<ConvertFileResult> {
  const { input } = request;
  const recognised = await recogniseInput(input, {
    format: request.inputFormat,
    driverOptions: request.inputOptions,
    signal: request.signal,
  });
  if (recognised.kind === "appliance") {
    // Loaded only for an OVA: the reader brings an XML parser every other conversion does without.
    const { convertOvaDisk } = await import("../ova/ova-convert.js");
    return convertOvaDisk(request, recognised.ova, convertImage, output);
  }
  if (request.disk !== undefined) {
    if (typeof recognised.input !== "string") await recognised.input.close();
    const name = typeof input === "string" ? locationForMessages(input) : input.path;
    throw new UsageError(`${name} is not an OVA: --disk (which disk of an appliance) applies to OVA inputs only`);
  }

  const { driver, source } = await openImage(recognised.input, {
    format: request.inputFormat,
    references: request.references,
    driverOptions: request.inputOptions,
    signal: request.signal,
  });
  const counting = countLocalData(input, source, request);
  try {
    const target = await outDriver.create!(output, source.virtualSize, request.createOptions ?? {});
    const stats = await convertImage(source, target, { ...request, dataTotal: request.dataTotal ?? counting });
    await output.commit({ sync: request.sync ?? true });
    return { ...stats, inputFormat: driver.name, outputFormat: outDriver.name, output: request.output };
  } finally {
    // The walk reads through the source: it ends (it never rejects) before the source closes.
    await counting;
    await source.close();
  }
}

/**
 * `promise`, or an AbortedError as soon as `signal` aborts: a read stuck on a stalled pipe or a hung device
 * must not hold up a cancellation (what the read was for is given up; the caller closes its source).
 */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new AbortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.finally(() => signal.removeEventListener("abort", onAbort)).then(resolve, reject);
  });
}
