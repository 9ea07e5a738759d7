/**
 * A new output, or one replacing a regular file, written where nothing can mistake it for a finished image and
 * given its final name only by `commit()`: after an error, a Ctrl-C or a kill -9, the final name holds what it held
 * before (nothing, or the old output, untouched).
 *
 * With the file-names addon (native/file-names.c) the file is made with O_TMPFILE: it has no name at all while it
 * is written, and the kernel frees it if the process dies. Commit then links it under the final name (a new
 * output) or exchanges it with the file it replaces (renameat2 RENAME_EXCHANGE), which leaves the old file whole
 * under a temporary name, to be removed off the critical path (old-output-release.ts): renaming over it would free
 * all its blocks inside the rename, which made re-running a conversion 2.6 times as slow as qemu-img
 * (docs/PERFORMANCE.md). Without the addon, or on a filesystem without O_TMPFILE, the file is written under a
 * hidden temporary name beside the final one and renamed over it.
 *
 * A replacement takes the owner, group and mode of the file it replaces; a new output the mode it is given.
 */
import { constants, type Stats } from "node:fs";
import { open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { loadNativeAddon } from "../../util/native-addon.js";
import { randomHex } from "../../util/lazy-builtins.js";
import { closeHandle, settlePending, writeAt } from "./positional-io.js";
import { outputError, systemError, type FileOutput } from "./output-file.js";
import { releaseReplacedFile } from "./old-output-release.js";
import { PRIVATE_OUTPUT_MODE } from "./output-mode.js";

interface FileNamesAddon {
  readonly O_TMPFILE: number;
  link(fd: number, path: string): void;
  exchange(a: string, b: string): void;
}

/** Null when the addon was not built, or when CHROMOGENIC_NATIVE_NAMES=off (to test the fallback). */
function fileNames(): FileNamesAddon | null {
  return process.env.CHROMOGENIC_NATIVE_NAMES === "off" ? null : loadNativeAddon<FileNamesAddon>("file-names");
}

/** True when outputs can be made without a name and exchanged with the files they replace. */
export function fileNamesAddonLoaded(): boolean {
  return fileNames() !== null;
}

/** Errors saying the filesystem cannot do what was asked (O_TMPFILE, RENAME_EXCHANGE): fall back. */
const UNSUPPORTED = new Set(["EOPNOTSUPP", "EINVAL", "EISDIR", "ENOSYS", "ENOTSUP"]);

export interface TemporaryOutputOptions {
  /**
   * The name the file has before it is complete (default: a fresh hidden name beside the final path), for callers
   * that record it before it exists so that a run killed with SIGKILL can still be cleaned up.
   */
  readonly temporaryPath?: string;
  /** The permission bits of a new output, before the umask (default 0600). */
  readonly mode?: number;
  /** The file being replaced (its stat): its owner, group and mode are given to the new one. */
  readonly replacing?: Stats;
  /**
   * Handles to close once the output is committed or discarded: the locks taken for it (a handle of the file it
   * replaces among them, closed before that file is removed, so that its removal is not left to this process).
   */
  readonly holds?: readonly FileHandle[];
}

export class TemporaryOutputFile implements FileOutput {
  readonly seekable = true;
  private end = 0;
  private settled = false;
  /** The name the file has now (null while it has none), which an interrupted run must remove. */
  private named: string | null;

  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    readonly handle: FileHandle,
    private readonly anonymous: boolean,
    private readonly replacing: boolean,
    private readonly holds: readonly FileHandle[],
  ) {
    this.named = anonymous ? null : tempPath;
  }

  /** The temporary name `create` uses when given none: hidden, beside the final path, unique. */
  static temporaryPathFor(finalPath: string): string {
    return join(dirname(finalPath), `.${basename(finalPath)}.${randomHex(4)}.partial`);
  }

  /** Creates the file that will become `finalPath` on commit. No check or lock: see openOutputFile. */
  static async create(finalPath: string, options: TemporaryOutputOptions = {}): Promise<TemporaryOutputFile> {
    const tempPath = options.temporaryPath ?? TemporaryOutputFile.temporaryPathFor(finalPath);
    const mode = options.replacing ? PRIVATE_OUTPUT_MODE : (options.mode ?? PRIVATE_OUTPUT_MODE);
    let handle = await openAnonymous(dirname(finalPath), mode);
    const anonymous = handle !== undefined;
    handle ??= await open(tempPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, mode);
    const replacing = options.replacing !== undefined;
    const file = new TemporaryOutputFile(finalPath, tempPath, handle, anonymous, replacing, options.holds ?? []);
    liveTemporaries.add(file);
    try {
      if (options.replacing) await takeOwnership(handle, options.replacing, finalPath);
    } catch (e) {
      await file.discard();
      throw e;
    }
    return file;
  }

  get position(): number {
    return this.end;
  }

  async append(data: Buffer): Promise<void> {
    const at = this.end;
    this.end += data.length;
    await this.write(data, at);
  }

  async writeAt(data: Buffer, position: number): Promise<void> {
    this.end = Math.max(this.end, position + data.length);
    await this.write(data, position);
  }

  private async write(data: Buffer, position: number): Promise<void> {
    try {
      await writeAt(this.handle, data, position);
    } catch (e) {
      throw outputError(this.finalPath, e);
    }
  }

  async truncate(length: number): Promise<void> {
    try {
      await this.handle.truncate(length);
    } catch (e) {
      throw outputError(this.finalPath, e);
    }
    this.end = length;
  }

  /** Flushes to disk (unless `sync` is false) and gives the file its final name. */
  async commit(options: { sync?: boolean } = {}): Promise<void> {
    await settlePending(this.handle);
    if (options.sync ?? true) await this.handle.sync();
    const replaced = await this.takeFinalName();
    this.settled = true;
    await closeHandle(this.handle);
    await this.release();
    // Exchanged, the old output is under the temporary name: ours to remove, and to remove if interrupted.
    if (replaced) releaseReplacedFile(this.tempPath);
    this.named = null;
    liveTemporaries.delete(this);
  }

  /** Gives the file its final name; true when the file that had it is now under the temporary name. */
  private async takeFinalName(): Promise<boolean> {
    const names = fileNames();
    if (this.anonymous) {
      if (!this.replacing) {
        try {
          names!.link(this.handle.fd, this.finalPath);
          return false;
        } catch (e) {
          // Taken meanwhile (by a writer that takes no lock): replaced below, as any other file would be.
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw outputError(this.finalPath, e);
        }
      }
      names!.link(this.handle.fd, this.tempPath);
      this.named = this.tempPath;
    }
    const replaced = await giveName(this.tempPath, this.finalPath);
    if (!replaced) this.named = null;
    return replaced;
  }

  private async release(): Promise<void> {
    await Promise.allSettled(this.holds.map((h) => closeHandle(h)));
  }

  /** Closes and removes the unfinished file; safe to call more than once. */
  async discard(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    liveTemporaries.delete(this);
    await closeHandle(this.handle).catch(() => undefined);
    if (this.named) await unlink(this.named).catch(() => undefined);
    await this.release();
  }

  /** The name to remove if the process is interrupted now, if the file has one. */
  get interruptedPath(): string | null {
    return this.named;
  }
}

/** A file without a name in `folder`, or undefined where that cannot be made (no addon, no O_TMPFILE there). */
async function openAnonymous(folder: string, mode: number): Promise<FileHandle | undefined> {
  const names = fileNames();
  if (!names) return undefined;
  try {
    return await open(folder, names.O_TMPFILE | constants.O_RDWR, mode);
  } catch (e) {
    if (UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? "")) return undefined;
    throw e;
  }
}

/** Swaps the two names (true), or returns false where that cannot be done (no addon, a filesystem without it). */
async function exchangeNames(a: string, b: string): Promise<boolean> {
  const names = fileNames();
  if (!names) return false;
  try {
    names.exchange(a, b);
    return true;
  } catch (e) {
    // ENOENT: the file to replace went away meanwhile; rename then just gives the name.
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (UNSUPPORTED.has(code) || code === "ENOENT") return false;
    throw e;
  }
}

/**
 * Renames the complete file `from` to `to`: exchanged with the file `to` names, if any (true: that file is now
 * under `from`, to be released), else renamed (false).
 */
async function giveName(from: string, to: string): Promise<boolean> {
  if (await exchangeNames(from, to)) return true;
  await rename(from, to);
  return false;
}

/**
 * Moves a complete file, written elsewhere under a temporary name (a resumable download), to `to` as a replaced
 * output is: taking the owner, group and mode of the file it replaces, which is removed off the critical path.
 */
export async function moveIntoPlace(from: string, to: string): Promise<void> {
  const old = await stat(to).catch(() => undefined);
  if (old?.isFile()) {
    const handle = await open(from, constants.O_RDONLY);
    try {
      await takeOwnership(handle, old, to);
    } finally {
      await handle.close();
    }
  }
  if (await giveName(from, to)) releaseReplacedFile(from);
}

/** Gives the new file the owner, group and mode of the one it replaces. */
async function takeOwnership(handle: FileHandle, old: Stats, finalPath: string): Promise<void> {
  const st = await handle.stat();
  if (st.uid !== old.uid || st.gid !== old.gid) {
    try {
      await handle.chown(old.uid, old.gid);
    } catch (e) {
      throw systemError(
        `cannot replace ${finalPath}: its replacement could not be given its owner and group ` +
          `(uid ${old.uid}, gid ${old.gid}); write it in place with -n, or remove it first`,
        (e as NodeJS.ErrnoException).code ?? "EPERM",
        e,
      );
    }
  }
  await handle.chmod(old.mode & 0o777);
}

/** Temporary outputs not yet committed or discarded, removed synchronously if the process is interrupted. */
const liveTemporaries = new Set<TemporaryOutputFile>();

/** Temporary files in flight, for signal handlers that must remove them before exiting. */
export function pendingTemporaryPaths(): string[] {
  return [...liveTemporaries].flatMap((f) => (f.interruptedPath ? [f.interruptedPath] : []));
}
