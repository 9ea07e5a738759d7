/**
 * Image locks as qemu takes them, so that chromogenic and qemu (qemu-img, qemu-nbd, a running VM) keep out of
 * each other's images: a writer is refused while anyone reads or writes the image, a reader while anyone writes
 * it, and the refusal names the process in the way.
 *
 * qemu's scheme (block/file-posix.c, raw_apply_lock_bytes and raw_check_lock_bytes): an open image holds a shared
 * open-file-description lock on byte 100 + n for each permission n it uses (0 consistent read, 1 write, 2 write
 * of unchanged data, 3 resize) and on byte 200 + n for each it will not let others have. Before it proceeds it
 * looks for others' locks: on 200 + n for each permission it uses (someone forbids it), on 100 + n for each it
 * forbids (someone uses it). The locks are taken before the check, so of two openers racing, at least one sees the
 * other. qemu-img itself opens an image it converts into for writing (100, 101, 103 and 200 + write and resize) and
 * one it reads for reading (100, and 201 and 203: it lets nobody write or resize it meanwhile); these are the
 * bytes taken here, which `/proc/PID/fdinfo` shows for qemu-io holding an image the same way.
 *
 * The locks belong to the open file, so they go when it is closed; nothing needs releasing by hand.
 *
 * Without the file-lock addon (no C compiler when the project was built) nothing can be locked: every open that
 * would have been says so once, as a process warning, and goes on — refusing every conversion on such a host would
 * make the addon mandatory; going on without a word would let two writers meet unseen.
 */
import type { FileHandle } from "node:fs/promises";
import { ImageInUseError } from "../errors.js";
import { loadNativeAddon } from "../../util/native-addon.js";
import { describeHolders, lockHolders, type LockHolder } from "./lock-holders.js";

export interface FileLockAddon {
  lock(fd: number, start: number, length: number): void;
  unlock(fd: number, start: number, length: number): void;
  /** The first lock that would keep an exclusive lock on the range from being taken now, or null. */
  test(
    fd: number,
    start: number,
    length: number,
  ): { exclusive: boolean; start: number; length: number; /** -1 for an OFD lock */ pid: number } | null;
}

/** Null when the addon was not built, or when CHROMOGENIC_NATIVE_LOCK=off (to test the unlocked path). */
export function fileLockAddon(): FileLockAddon | null {
  return process.env.CHROMOGENIC_NATIVE_LOCK === "off" ? null : loadNativeAddon<FileLockAddon>("file-lock");
}

const PERMISSION_BYTE = 100;
const FORBIDDEN_BYTE = 200;
const CONSISTENT_READ = 0;
const WRITE = 1;
const RESIZE = 3;

/** How an image is used: read (as an input) or written (as an output). */
export type ImageUse = "read" | "write";

const PERMISSIONS: Record<ImageUse, { readonly uses: readonly number[]; readonly forbids: readonly number[] }> = {
  read: { uses: [CONSISTENT_READ], forbids: [WRITE, RESIZE] },
  write: { uses: [CONSISTENT_READ, WRITE, RESIZE], forbids: [WRITE, RESIZE] },
};

/** What holders of an image are doing with it, from the bytes they hold: writing it, or only reading it. */
function holdersDo(holders: readonly LockHolder[], conflict: number): string {
  const writes = (ranges: LockHolder["ranges"]) =>
    ranges.some(([start, end]) => start <= PERMISSION_BYTE + WRITE && PERMISSION_BYTE + WRITE <= end);
  if (holders.length === 0) return conflict === PERMISSION_BYTE + WRITE ? "being written" : "in use";
  return holders.some((h) => writes(h.ranges)) ? "being written" : "being read";
}

/**
 * Locks the open image `handle` (at `path`, for messages) for `use`; throws ImageInUseError, naming the
 * processes in the way, when another open of the file conflicts. Held until the handle is closed.
 */
export async function lockImage(handle: FileHandle, path: string, use: ImageUse): Promise<void> {
  const { uses, forbids } = PERMISSIONS[use];
  const bytes = [...uses.map((n) => PERMISSION_BYTE + n), ...forbids.map((n) => FORBIDDEN_BYTE + n)];
  const checks = [...uses.map((n) => FORBIDDEN_BYTE + n), ...forbids.map((n) => PERMISSION_BYTE + n)];
  const conflict = await lockBytes(handle, path, bytes, checks);
  if (conflict === undefined) return;
  const holders = await lockHolders(handle, conflict);
  const hint = use === "read" ? "; -U (--force-share) reads it anyway, at the risk of reading a changing image" : "";
  throw new ImageInUseError(`${path} is ${holdersDo(holders, conflict)} by ${describeHolders(holders)}${hint}`);
}

/**
 * Takes a shared lock on each of `bytes`, then looks for others' locks on `checks`; returns the first byte found
 * held by someone else (after releasing ours), or undefined once all are ours. Where locks cannot be taken (no
 * addon, a filesystem without them), warns once and returns undefined.
 */
export async function lockBytes(
  handle: FileHandle,
  path: string,
  bytes: readonly number[],
  checks: readonly number[],
): Promise<number | undefined> {
  const addon = fileLockAddon();
  if (!addon) {
    warnUnlocked("the file-lock addon is not built (a C compiler builds it: bash scripts/build-native.sh)");
    return undefined;
  }
  const taken: number[] = [];
  const release = () => {
    for (const byte of taken) addon.unlock(handle.fd, byte, 1);
  };
  try {
    for (const byte of bytes) {
      addon.lock(handle.fd, byte, 1);
      taken.push(byte);
    }
  } catch (e) {
    release();
    const code = (e as NodeJS.ErrnoException).code;
    // Another open holds the byte exclusively: that is a conflict like any other.
    if (code === "EAGAIN" || code === "EACCES") return bytes[taken.length];
    warnUnlocked(`${path} cannot be locked on its filesystem (${code})`);
    return undefined;
  }
  const conflict = checks.find((byte) => addon.test(handle.fd, byte, 1) !== null);
  if (conflict !== undefined) release();
  return conflict;
}

let warned = false;

/** Says once per process that images are not locked, and why. */
export function warnUnlocked(why: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `images are not locked: ${why}; a second job or a qemu process using the same image at the same time would not be detected`,
    { code: UNLOCKED_WARNING },
  );
}

/** The code of the process warning emitted when images cannot be locked. */
export const UNLOCKED_WARNING = "CHROMOGENIC_UNLOCKED";
