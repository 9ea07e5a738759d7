/**
 * Removing the file an output replaced, off the critical path.
 *
 * Giving a new output the name of an old one frees the old file's blocks and page cache somewhere: rename() over it
 * does so inside the rename (and, on ext4, first starts writing the new file out, as it does for any file renamed
 * over another), truncating it as qemu-img does costs the same, and so does unlink(). For the benchmark's 874 MiB
 * output that is 0.2–0.5 s, as much as the conversion itself (docs/PERFORMANCE.md has the measurements). Its
 * blocks cannot be freed while the conversion runs: until the new output is complete, the old one must stay whole
 * under its name. Its page cache can, when clean: open-output.ts drops it as the conversion starts, so that the new
 * output's pages reuse that memory rather than fresh pages (on this virtual machine, pages the guest freed long ago
 * are slow to touch again; qemu-img gets the same by truncating the old file first, losing it if it then fails).
 * The new output takes the name by exchanging names with the old one (replacing-output.ts), and the old file, now
 * under the temporary name, is removed here, where nobody waits for it:
 *
 * - in a process that goes on (a library user's), on the threadpool, not awaited;
 * - in the CLI, which exits once its job is done and would have to wait for that removal before exiting, by a
 *   detached process that outlives it (`releaseReplacedFilesAfterExit`); if none can be started, in the process.
 *
 * Until it is gone, a second Ctrl-C removes it as it removes unfinished outputs (pathsBeingReleased).
 */
import { closeSync, constants, openSync, unlinkSync } from "node:fs";
import { unlink } from "node:fs/promises";

let afterExit = false;
const releasing = new Set<string>();

/** For a process about to exit once its work is done (the CLI): replaced files are freed after it exits. */
export function releaseReplacedFilesAfterExit(): void {
  afterExit = true;
}

/** Starts removing `path`, the file an output replaced; returns at once. */
export function releaseReplacedFile(path: string): void {
  if (afterExit && removeAfterExit(path)) return;
  removeInProcess(path);
}

/** Replaced files still being removed in this process, for signal handlers that must remove them before exiting. */
export function pathsBeingReleased(): string[] {
  return [...releasing];
}

function removeInProcess(path: string): void {
  releasing.add(path);
  void unlink(path)
    .catch(() => undefined)
    .finally(() => releasing.delete(path));
}

/**
 * Removes `path`'s name now and leaves its blocks to a detached process that holds the file open until this one
 * exits (`cat`, reading a pipe whose other end this process holds): unlinking a file someone still has open only
 * removes its name, and the last close, in that process, frees it. So the folder is as it should be at once, and a
 * crash meanwhile leaves an orphan the filesystem frees at its next mount rather than a stray file. False when no
 * such process could be started.
 */
function removeAfterExit(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    // Loaded only here: a conversion that replaces nothing does without node:child_process.
    const { spawn } = process.getBuiltinModule("node:child_process");
    const holder = spawn("cat", [], { detached: true, stdio: ["pipe", "ignore", "ignore", fd] });
    if (holder.pid === undefined) {
      holder.on("error", () => undefined);
      return false;
    }
    holder.unref();
    (holder.stdin as unknown as { unref(): void }).unref();
    unlinkSync(path);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
