import type { Writable } from "node:stream";
import { ChromogenicError } from "../errors.js";

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
 * A seekable output that becomes the user's file (or device) only once `commit()` has run: replacing-output.ts for
 * new files and replaced ones, in-place-output.ts for block devices and `-n`; open-output.ts picks one.
 */
export interface FileOutput extends OutputFile {
  /** Where the output is once committed: the name the user gave (a symlink's target, for one replaced). */
  readonly finalPath: string;
  /** Flushes the output to disk (unless `sync` is false) and makes it the user's. */
  commit(options?: { sync?: boolean }): Promise<void>;
  /** Abandons an output not committed (safe to call more than once, and after commit). */
  discard(): Promise<void>;
}

/**
 * A failed write to `path`, said with the user's name for the output and the system's words for the failure
 * ("cannot write out.qcow2: no space left on device"), never a temporary name or a bare errno; it keeps the
 * system's code (ENOSPC), as docs/ERRORS.md says system errors do. Errors already ours pass through.
 */
export function outputError(path: string, e: unknown): Error {
  if (e instanceof ChromogenicError) return e;
  const err = e as NodeJS.ErrnoException;
  if (typeof err.code !== "string") return err;
  // node:fs says "ENOSPC: no space left on device, write"; the description alone is the readable part.
  const description = /^[A-Z0-9_]+: (.*?)(, \w+.*)?$/.exec(err.message)?.[1] ?? err.message;
  return systemError(`cannot write ${path}: ${description}`, err.code, e);
}

/** An error of the operating system's kind: its errno name as `code` (docs/ERRORS.md), with our message. */
export function systemError(message: string, code: string, cause?: unknown): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(message, { cause });
  error.code = code;
  return error;
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
