/**
 * Opening what the user named as an output, before any work: what it is decides how it is written, and what it
 * cannot be is refused with a sentence naming it.
 *
 * - nothing yet: a new file, given its name once complete (replacing-output.ts), with the mode it is given;
 * - a regular file: replaced the same way, keeping its owner, group and mode, the old file untouched until then;
 * - a block device, or a regular file with `inPlace` (qemu-img convert -n): written where it is
 *   (in-place-output.ts); a device is opened exclusively, so a mounted one is refused;
 * - a folder, a FIFO, a socket, a character device, a name in a folder that does not exist: refused.
 *
 * Every writer locks what it writes, as qemu-img does (image-locks.ts), and the name too (output-name-lock.ts), so a
 * second job writing the same output, or a process using the file being replaced, is refused by process id.
 */
import { constants, type Stats } from "node:fs";
import { lstat, open, realpath, stat, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { ChromogenicError, ImageInUseError, UsageError } from "../errors.js";
import { blockDeviceSize } from "../inputs/file-input.js";
import { lockImage } from "./image-locks.js";
import { closeHandle, dropCleanCache } from "./positional-io.js";
import { InPlaceOutputFile } from "./in-place-output.js";
import { outputError, type FileOutput } from "./output-file.js";
import { lockOutputName } from "./output-name-lock.js";
import { TemporaryOutputFile, type TemporaryOutputOptions } from "./replacing-output.js";

export interface OpenOutputOptions extends Pick<TemporaryOutputOptions, "temporaryPath" | "mode"> {
  /**
   * The output exists, a regular file or a block device, and is written where it is rather than created or
   * replaced (qemu-img convert -n). Block devices are always written in place.
   */
  readonly inPlace?: boolean;
}

/** Opens `path` as an output, locked for this writer; refuses, before anything is written, what cannot be one. */
export async function openOutputFile(path: string, options: OpenOutputOptions = {}): Promise<FileOutput> {
  if (path === "-") {
    // Everywhere else "-" is a stream; a file called "-" in the working folder would only ever be a surprise.
    throw new UsageError(
      'output "-": images are not written to standard output; name a file (./- for a file called "-")',
    );
  }
  const existing = await examineOutput(path);
  if (!existing) {
    if (options.inPlace) {
      throw new UsageError(`output ${path} does not exist: -n writes into an existing file or block device`);
    }
    await checkFolder(path);
    const holds = await nameLockOf(path);
    return createOrRefuse(path, () =>
      TemporaryOutputFile.create(path, { temporaryPath: options.temporaryPath, mode: options.mode, holds }),
    ).catch(async (e: unknown) => {
      await Promise.allSettled(holds.map((h) => h.close()));
      throw e;
    });
  }
  if (existing.stats.isBlockDevice()) return openInPlace(path, existing.real, existing.stats);
  if (options.inPlace) return openInPlace(path, existing.real, existing.stats);
  // Replaced: the temporary file goes beside the file itself (a symlink's target), so that it can take its name.
  const holds = await nameLockOf(existing.real);
  try {
    const old = await open(existing.real, constants.O_RDONLY | constants.O_NONBLOCK).catch((e: unknown) => {
      throw outputError(path, e);
    });
    holds.push(old);
    await lockImage(old, path, "write");
    // Its page cache, if clean, goes now, while the conversion runs, rather than when it is removed: the new
    // output's pages then reuse that memory (old-output-release.ts). The file itself stays whole.
    dropCleanCache(old).catch(() => undefined);
    const replacing = await old.stat();
    return await createOrRefuse(path, () =>
      TemporaryOutputFile.create(existing.real, { temporaryPath: options.temporaryPath, replacing, holds }),
    );
  } catch (e) {
    await Promise.allSettled(holds.map((h) => closeHandle(h)));
    throw e;
  }
}

/** The handles holding the lock on `path`'s name: one, or none where the name cannot be locked. */
async function nameLockOf(path: string): Promise<FileHandle[]> {
  const lock = await lockOutputName(path);
  return lock ? [lock] : [];
}

/** What is at `path` now (symlinks followed) and its real path, or undefined when nothing is; refuses non-files. */
async function examineOutput(path: string): Promise<{ stats: Stats; real: string } | undefined> {
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw outputError(path, e);
    const link = await lstat(path).catch(() => undefined);
    if (link?.isSymbolicLink()) {
      throw new UsageError(`output ${path} is a symbolic link to a file that does not exist`);
    }
    return undefined;
  }
  const refused = refusedKind(stats);
  if (refused) throw new UsageError(`output ${path} is ${refused}`);
  return { stats, real: await realpath(path) };
}

/** Why a file of this kind cannot be an output, or undefined for a regular file or a block device. */
function refusedKind(stats: Stats): string | undefined {
  if (stats.isFile() || stats.isBlockDevice()) return undefined;
  if (stats.isDirectory()) return "a folder: name a file in it";
  if (stats.isFIFO())
    return "a FIFO (named pipe): images are written to files and block devices, which can be seeked in";
  if (stats.isSocket()) return "a socket: images are written to files and block devices";
  return "a character device: images are written to files and block devices";
}

/** Refuses a new output whose folder is missing or is not a folder, before anything else is done. */
async function checkFolder(path: string): Promise<void> {
  const folder = dirname(path);
  const st = await stat(folder).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new UsageError(`cannot create output ${path}: the folder ${folder} does not exist`);
    }
    throw outputError(path, e);
  });
  if (!st.isDirectory()) throw new UsageError(`cannot create output ${path}: ${folder} is not a folder`);
}

/** Runs `create`, saying "cannot create PATH: permission denied" (the user's path) when the system refuses. */
async function createOrRefuse<T>(path: string, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (e) {
    if (e instanceof ChromogenicError) throw e;
    const error = outputError(path, e);
    error.message = error.message.replace(/^cannot write /, "cannot create ");
    throw error;
  }
}

/** A block device, or a file named with -n: opened for writing where it is, and locked. */
async function openInPlace(path: string, real: string, stats: Stats): Promise<FileOutput> {
  const device = stats.isBlockDevice();
  // O_EXCL on a block device: refused (EBUSY) while it is mounted or held by the kernel (RAID, LVM, swap).
  const flags = constants.O_RDWR | (device ? constants.O_EXCL : 0);
  const handle = await open(real, flags).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === "EBUSY") {
      throw new ImageInUseError(`${path} is in use by the system (mounted, or part of a RAID, LVM volume or swap)`);
    }
    throw outputError(path, e);
  });
  try {
    await lockImage(handle, path, "write");
    return new InPlaceOutputFile(path, handle, device ? await blockDeviceSize(path, stats.rdev) : undefined);
  } catch (e) {
    await handle.close();
    throw e;
  }
}
