/**
 * Binary files the conversion reads (kernels, initramfs images), whether in the guest or given on the host:
 * opened so that nothing can hang or mislead us — never blocking (a FIFO), never a final symlink in the guest
 * (guest links are followed inside the guest root first), only a regular file of bounded size — and read in
 * bounded pieces.
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { UsageError } from "../../formats/errors.js";
import { GuestPathError, resolveGuestPath } from "../../guest/guest-path.js";
import { kindOf } from "../cleaning/guest-tree.js";

export interface BoundedFile {
  readonly handle: FileHandle;
  readonly size: number;
  /** How messages name it: the guest path, or the host path the caller gave. */
  readonly name: string;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

async function openChecked(
  path: string,
  flags: number,
  name: string,
  maxBytes: number,
  fail: (message: string) => Error,
): Promise<BoundedFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw fail(`${name}: is a symbolic link`);
    if (code === "ENOENT" || code === "ENOTDIR") throw fail(`${name}: does not exist`);
    throw fail(`${name}: cannot be opened (${code ?? (e as Error).message})`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw fail(`${name}: is a ${kindOf(st)}, not a regular file`);
    if (st.size > maxBytes) throw fail(`${name}: ${st.size} bytes, more than the ${maxBytes} allowed`);
    return { handle, size: st.size, name };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** Opens a guest file for reading, its links followed inside the guest only; a GuestPathError otherwise. */
export async function openGuestFile(root: string, guestPath: string, maxBytes: number): Promise<BoundedFile> {
  const host = await resolveGuestPath(root, guestPath, { followLast: true });
  return openChecked(
    host,
    READ_FLAGS | constants.O_NOFOLLOW,
    `guest file ${guestPath}`,
    maxBytes,
    (m) => new GuestPathError(m),
  );
}

/** Opens a file the caller named on the host (`--kernel FILE`); a UsageError when it is unfit. */
export async function openHostFile(path: string, what: string, maxBytes: number): Promise<BoundedFile> {
  return openChecked(path, READ_FLAGS, `${what} ${path}`, maxBytes, (m) => new UsageError(m));
}

/** Up to `length` bytes from the start (fewer when the file is shorter). */
export async function readHead(file: BoundedFile, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.min(length, file.size));
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await file.handle.read(buf, done, buf.length - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

/** The bytes from `from` to `to` (default: the size the file had when opened), in pieces of `piece` bytes. */
export async function* readPieces(
  file: BoundedFile,
  from: number,
  piece = 2 ** 20,
  to = file.size,
): AsyncGenerator<Buffer> {
  for (let at = from; at < to;) {
    const buf = Buffer.allocUnsafe(Math.min(piece, to - at));
    const { bytesRead } = await file.handle.read(buf, 0, buf.length, at);
    if (bytesRead === 0) throw new Error(`${file.name}: shrank while read (at byte ${at})`);
    yield buf.subarray(0, bytesRead);
    at += bytesRead;
  }
}
