/**
 * Pieces every ImageSource needs around its format-specific mapping: the caller's range checked against the
 * disk, the buffer a read fills, waiting for a read's pieces, and the allocation map's touching extents of
 * one kind joined so callers see the fewest, largest extents.
 */
import type { ImageInput } from "../inputs/image-input.js";
import type { Extent, ExtentKind } from "../types.js";

/**
 * Throws RangeError unless `offset` and `length` are whole, non-negative numbers and the range lies inside a
 * disk of `virtualSize` bytes (the ImageSource contract: ranges outside the disk are caller errors).
 */
export function checkDiskRange(path: string, offset: number, length: number, virtualSize: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`${path}: invalid range ${offset}+${length}`);
  }
  if (offset + length > virtualSize) {
    throw new RangeError(`${path}: range ${offset}+${length} lies beyond the end of the disk (${virtualSize} bytes)`);
  }
}

/** Where a read of `length` bytes goes: the start of `into` (RangeError if it is too small), or a new buffer. */
export function readDestination(path: string, length: number, into?: Buffer): Buffer {
  if (into && into.length < length) {
    throw new RangeError(`${path}: buffer of ${into.length} bytes cannot hold a ${length}-byte read`);
  }
  return into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
}

/**
 * Waits for every one of the pieces of a read (or write) running side by side, not just until the first
 * failure, so nothing touches the caller's buffer after the call returns; then throws the first failure (in
 * the order given), if any.
 */
export async function settleAll(jobs: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Joins touching extents of one kind, given in order; empty ones are dropped. */
export class ExtentMerger {
  private pending: { offset: number; length: number; kind: ExtentKind } | undefined;

  /** Takes the next extent; yields the one before it once it can grow no more. */
  *add(offset: number, length: number, kind: ExtentKind): Generator<Extent> {
    if (length === 0) return;
    const p = this.pending;
    if (p && p.kind === kind && p.offset + p.length === offset) {
      p.length += length;
      return;
    }
    if (p) yield p;
    this.pending = { offset, length, kind };
  }

  /** Yields the last extent taken, if any. */
  *flush(): Generator<Extent> {
    if (this.pending) yield this.pending;
    this.pending = undefined;
  }
}

/** A stretch of the disk as an image file's block map sees it: for data, where its bytes are in the file. */
export interface FileRun extends Extent {
  /** Where a data run's bytes are in the file (meaningless for other kinds). */
  readonly fileOffset: number;
}

/** Joins touching runs of one kind that, when they hold data, also follow each other in the file. */
export class FileRunMerger<R extends FileRun> {
  private pending: R | undefined;

  /** Takes the next run; yields the one before it once it can grow no more. */
  *add(run: R): Generator<R> {
    const p = this.pending;
    if (
      p &&
      p.kind === run.kind &&
      p.offset + p.length === run.offset &&
      (run.kind !== "data" || p.fileOffset + p.length === run.fileOffset)
    ) {
      this.pending = { ...p, length: p.length + run.length };
      return;
    }
    if (p) yield p;
    this.pending = run;
  }

  /** Yields the last run taken, if any. */
  *flush(): Generator<R> {
    if (this.pending) yield this.pending;
    this.pending = undefined;
  }
}

/**
 * Fills `out`, which holds the disk's bytes from `offset` on, from the runs mapping that range: data runs are
 * read from `file` at their file offset (side by side, `what` naming them in errors), other runs read as zeros.
 */
export async function readFileRuns(
  file: ImageInput,
  runs: Iterable<FileRun> | AsyncIterable<FileRun>,
  out: Buffer,
  offset: number,
  what: string,
): Promise<void> {
  const jobs: Promise<unknown>[] = [];
  for await (const run of runs) {
    const dest = out.subarray(run.offset - offset, run.offset - offset + run.length);
    if (run.kind === "data") jobs.push(file.readExact(run.fileOffset, run.length, dest, what));
    else dest.fill(0);
  }
  await settleAll(jobs);
}
