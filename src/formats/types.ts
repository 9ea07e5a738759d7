/**
 * The engine's one interface for every disk format, in the spirit of qemu's block drivers:
 * a driver probes, opens a source, and creates a target; everything above this file
 * (convert, info, export, cleaning) talks only to these types.
 */
import type * as z from "zod";
import type { OutputFile } from "./io/output-file.js";
import type { ImageInput } from "./inputs/image-input.js";

/** What a stretch of the guest-visible disk holds. */
export type ExtentKind =
  /** Bytes stored in the image (they may still happen to be zero). */
  | "data"
  /** Known to read as zeros, recorded explicitly (qcow2 zero clusters, holes in raw that the FS reports). */
  | "zero"
  /** Not allocated in this image: reads as zeros (or from a backing file when one is allowed). */
  | "unallocated";

export interface Extent {
  readonly offset: number;
  readonly length: number;
  readonly kind: ExtentKind;
}

/** Facts `chromogenic info` prints; every field comes from the image's own metadata. */
export interface ImageDetails {
  readonly format: string;
  readonly virtualSize: number;
  /** Bytes the image file(s) occupy on the host filesystem. */
  readonly actualSize: number;
  /** Bytes of guest data the image stores (data extents), as the allocation map reports. */
  readonly allocatedBytes?: number;
  readonly clusterSize?: number;
  /** Compression used by at least the format's settings (e.g. qcow2 compression_type). */
  readonly compression?: string;
  readonly backingFile?: string;
  readonly backingFormat?: string;
  readonly dataFile?: string;
  /** Anything else worth showing, format by format (version, refcount bits, extended L2, …). */
  readonly formatSpecific: Readonly<Record<string, string | number | boolean>>;
  /**
   * What the user should know about how this file was read: where the driver chose one reading of something
   * readers disagree on (qemu-img included), or used a redundant copy because the first was damaged.
   */
  readonly warnings?: readonly string[];
}

/**
 * A readable image. Reads or extent ranges outside the disk are caller errors (RangeError); reads of zero or
 * unallocated ranges return zeros.
 * Implementations must be safe for several concurrent reads.
 */
export interface ImageSource {
  readonly format: string;
  readonly virtualSize: number;
  /** Reads `length` bytes at `offset` into `into` (or a new buffer) and returns the filled slice. */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * The allocation map from `offset` to `offset + length` (default: the whole disk), in increasing order,
   * contiguous and non-overlapping. Adjacent extents of one kind should be merged where cheap.
   */
  extents(offset?: number, length?: number): AsyncIterable<Extent>;
  details(): Promise<ImageDetails>;
  close(): Promise<void>;
}

/**
 * How a target writes: "random" needs a seekable output (it goes back to fill in tables); "sequential" writes
 * strictly in order, so it can feed a pipe, an upload or a tar member.
 */
export type WriteAccess = "random" | "sequential";

/**
 * A writable image being created. The convert pipeline calls writeData/writeZeroes with strictly increasing,
 * non-overlapping ranges covering the whole disk; ranges need not be aligned to the target's granularity.
 * It awaits each call before making the next. A target with `access: "sequential"`
 * writes its output strictly in order (it can feed a pipe or a tar member).
 *
 * Buffer ownership: the caller recycles `data` as soon as writeData resolves, so a target that keeps working
 * after resolving (queued compression, batched writes) must copy what it still needs first.
 */
export interface ImageTarget {
  readonly format: string;
  /** "random" on a seekable output even for a target that could write in order (it may then leave holes). */
  readonly access: WriteAccess;
  /** Granularity in bytes at which the target can store zero runs sparsely (cluster size; 4096 for raw). */
  readonly granularity: number;
  /**
   * True when the target takes a call before the previous one resolved: calls take effect in call order, and
   * each promise resolves once the target is done with that call's `data`. The convert pipeline then keeps
   * several writes in flight, so file writes overlap each other and the reads; otherwise it awaits each call.
   */
  readonly pipelined?: boolean;
  writeData(offset: number, data: Buffer): Promise<void>;
  /** A run that reads as zeros. `kind` tells whether the source had it as explicit zeros or unallocated. */
  writeZeroes(offset: number, length: number, kind: "zero" | "unallocated"): Promise<void>;
  /** Writes the remaining metadata; the output is complete (under its temporary name) when this resolves. */
  finish(): Promise<void>;
  /** Stops after an error; releases resources without finishing. The caller removes the file. */
  abort(): Promise<void>;
}

/** Files an image may refer to (backing file, qcow2 external data file, VMDK extents). */
export interface ReferencePolicy {
  /**
   * Absolute host paths the caller allows an image to open besides itself. Empty (the default) means
   * an image naming any other file is refused.
   */
  readonly allowedPaths: readonly string[];
  /**
   * "name-only": a parent image (a qcow2 backing file) is named but not opened, as qemu-img info does
   * (BDRV_O_NO_BACKING): the image's own metadata is all that is read, and a read of a range only the parent
   * could supply fails with ReferenceRefusedError. Default "open".
   */
  readonly parents?: "open" | "name-only";
}

export interface OpenOptions {
  readonly references?: ReferencePolicy;
  /** Format name to use instead of probing. */
  readonly format?: string;
  /**
   * Driver-specific open options, `key=value` like create options (e.g. VHD's rule for its size ambiguity).
   * A driver refuses keys it does not know.
   */
  readonly driverOptions?: Readonly<Record<string, string>>;
}

/**
 * Context for probing: the head of the input and a way to look at its tail (fixed VHD keeps its footer there).
 * On an input read once in order (a pipe) the tail cannot be reached: readTail rejects, and probes that
 * need it give up.
 */
export interface ProbeInput {
  readonly head: Buffer;
  readonly size: number;
  readTail(length: number): Promise<Buffer>;
}

/**
 * How a driver opens the files its image names (qcow2 backing and external data files, VMDK extents): through
 * the engine, under one policy (the caller's allow list, the chain's depth, no loops), so no driver decides
 * what may be read and none imports the registry. Supplied by engine/open-image.ts.
 */
export interface ReferenceOpener {
  /**
   * Opens the file `name` that the image read through `from` refers to as its `role` ("extent", "external
   * data file"). With `sameFolder`, a relative name inside the image's own folder is allowed without being
   * listed (VMDK descriptors and their extents). Throws ReferenceRefusedError when not allowed.
   */
  openFile(
    from: ImageInput,
    name: string,
    role: string,
    rules?: { readonly sameFolder?: boolean },
  ): Promise<ImageInput>;
  /**
   * Opens the image `name` that `from` names as its parent (a qcow2 backing file), in `format` or detected,
   * with the same policy one level deeper in the chain.
   */
  openImage(from: ImageInput, name: string, format: string | undefined, role: string): Promise<ImageSource>;
}

/** What a driver's open is given besides the input. */
export interface DriverOpenContext {
  /** Driver-specific open options (`--input-option`); the driver refuses keys it does not know. */
  readonly driverOptions: Readonly<Record<string, string>>;
  readonly references: ReferenceOpener;
}

/** A create option's value: qemu-img's `-o` text, or a number or boolean where that is natural. */
export type CreateOptionValue = string | number | boolean;

/**
 * Create options as given, not yet validated: `-o key=value` text from the command line, or values from a
 * program. Each driver validates them against its schema (CreateOptionsFor gives a literal format's type).
 */
export type CreateOptions = Readonly<Record<string, CreateOptionValue | undefined>>;

/**
 * A driver's create options as one zod schema (see engine/create-option-schema.ts): it validates them (unknown
 * keys refused), documents them for `chromogenic formats` and `-o help`, and types the library's createOptions.
 */
export type CreateOptionsSchema = z.ZodObject<Readonly<Record<string, z.ZodType>>, z.core.$strict>;

export interface FormatDriver {
  readonly name: string;
  /** Other names users know the format by (qemu calls VHD "vpc"). */
  readonly aliases?: readonly string[];
  readonly description: string;
  /**
   * True when the image's bytes are the guest disk's bytes at the same offsets (raw): usable as a loop device,
   * downloadable sparse, its disk size known from its length.
   */
  readonly plainDisk?: boolean;
  /** Score 0..100 of how sure the driver is the file is its format; raw answers 1 for everything. */
  probe(input: ProbeInput): Promise<number> | number;
  /**
   * Opens the image held in `input`. The source owns the input from then on: it closes it with itself, or
   * before open rejects. A driver that needs random access refuses a sequential input (requireRandomAccess).
   */
  open(input: ImageInput, context: DriverOpenContext): Promise<ImageSource>;
  /**
   * Present when the format can be written. Options are validated against `createOptions` before any byte is
   * written.
   */
  readonly create?: (output: OutputFile, virtualSize: number, options: CreateOptions) => Promise<ImageTarget>;
  /**
   * The schema of the `-o key=value` options `create` accepts, loaded on demand: zod costs start-up time a
   * conversion without options does without.
   */
  readonly createOptions?: () => Promise<CreateOptionsSchema>;
  /**
   * How `create` writes with `options`, known before any output exists (e.g. whether a conversion can stream
   * into an upload). Read from the options as given: values `create` would refuse answer as the default does.
   */
  readonly writeAccess?: (options: CreateOptions) => WriteAccess;
  /**
   * The create options for an image handed to an importer (a cloud's image service, VMware's or AWS's import)
   * when they differ from the defaults: VMDK's streamOptimized, the only form those take.
   */
  readonly importOptions?: Readonly<Record<string, string>>;
  /** Documentation of the driver-specific options `open` accepts (OpenOptions.driverOptions). */
  readonly openOptions?: readonly CreateOptionDoc[];
}

/** An option as `chromogenic formats` and `-o help` print it. */
export interface CreateOptionDoc {
  readonly name: string;
  readonly description: string;
  readonly values?: string;
  readonly default?: string;
}
