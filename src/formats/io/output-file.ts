import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { closeHandle, settlePending, writeAt } from "./positional-io.js";
import { randomHex } from "../../util/lazy-builtins.js";

/**
 * Where a target writes its bytes: a seekable file (positional writes, truncate) or a sequential stream
 * (a pipe, a tar member) that accepts appends only. Targets that need random access check `seekable`.
 */
export interface OutputFile {
  readonly seekable: boolean;
  /** Bytes appended so far (sequential) or the highest end written (seekable). */
  readonly position: number;
  /** Writes at the current end. */
  append(data: Buffer): Promise<void>;
  /** Writes at an absolute position; seekable outputs only. */
  writeAt(data: Buffer, position: number): Promise<void>;
  /** Sets the file's length (sparse extension); seekable outputs only. */
  truncate(length: number): Promise<void>;
}

/**
 * A seekable output written under a temporary name beside its final path and renamed into place only by
 * `commit()`: after an error or Ctrl-C nothing half-written carries the final name.
 */
export class TemporaryOutputFile implements OutputFile {
  readonly seekable = true;
  private end = 0;
  private settled = false;

  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    readonly handle: FileHandle,
  ) {}

  /** The temporary name `create` uses when given none: hidden, beside the final path, unique. */
  static temporaryPathFor(finalPath: string): string {
    return join(dirname(finalPath), `.${basename(finalPath)}.${randomHex(4)}.partial`);
  }

  /**
   * Creates the temporary file (exclusively). A caller that must be able to remove it after a crash (a journal)
   * picks and records `tempPath` first.
   */
  static async create(
    finalPath: string,
    tempPath = TemporaryOutputFile.temporaryPathFor(finalPath),
  ): Promise<TemporaryOutputFile> {
    const handle = await open(tempPath, "wx", 0o644);
    const file = new TemporaryOutputFile(finalPath, tempPath, handle);
    liveTemporaries.add(file);
    return file;
  }

  get position(): number {
    return this.end;
  }

  async append(data: Buffer): Promise<void> {
    const at = this.end;
    this.end += data.length;
    await writeAt(this.handle, data, at);
  }

  async writeAt(data: Buffer, position: number): Promise<void> {
    this.end = Math.max(this.end, position + data.length);
    await writeAt(this.handle, data, position);
  }

  async truncate(length: number): Promise<void> {
    await this.handle.truncate(length);
    this.end = length;
  }

  /** Flushes to disk (unless `sync` is false) and renames the temporary file to its final name. */
  async commit(options: { sync?: boolean } = {}): Promise<void> {
    await settlePending(this.handle);
    if (options.sync ?? true) await this.handle.sync();
    await closeHandle(this.handle);
    await rename(this.tempPath, this.finalPath);
    this.settled = true;
    liveTemporaries.delete(this);
  }

  /** Closes and removes the temporary file; safe to call more than once. */
  async discard(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    liveTemporaries.delete(this);
    await closeHandle(this.handle).catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }
}

/** Temporary outputs not yet committed or discarded, removed synchronously if the process is interrupted. */
const liveTemporaries = new Set<TemporaryOutputFile>();

/** Temporary files in flight, for signal handlers that must remove them before exiting. */
export function pendingTemporaryPaths(): string[] {
  return [...liveTemporaries].map((f) => f.tempPath);
}

/** A sequential output over a Node.js Writable (pipe, tar member, stdout), honouring backpressure. */
export class StreamOutputFile implements OutputFile {
  readonly seekable = false;
  private written = 0;

  constructor(private readonly stream: Writable) {}

  get position(): number {
    return this.written;
  }

  append(data: Buffer): Promise<void> {
    this.written += data.length;
    return new Promise((resolve, reject) => {
      this.stream.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  writeAt(): Promise<void> {
    return Promise.reject(new Error("this output is sequential: positional writes are not possible"));
  }

  truncate(): Promise<void> {
    return Promise.reject(new Error("this output is sequential: it cannot be truncated"));
  }
}
