/**
 * Removing the file an output replaced, off the critical path.
 *
 * Giving a new output the name of an old one frees the old file's blocks and page cache somewhere: rename() over it
 * does so inside the rename (and, on ext4, first starts writing the new file out, as it does for any file renamed
 * over another), truncating it as qemu-img does costs the same, and so does unlink(). For the benchmark's 874 MiB
 * output that is 0.2–0.5 s, as much as the conversion itself (docs/PERFORMANCE.md has the measurements). None of
 * it can overlap the conversion: until the new output is complete, the old one must stay whole under its name. So
 * the new output takes the name by exchanging names with the old one (replacing-output.ts), and the old file, now
 * under the temporary name, is removed here, where nobody waits for it:
 *
 * - in a process that goes on (a library user's), on the threadpool, not awaited;
 * - in the CLI, which exits once its job is done and would have to wait for that removal before exiting, by a
 *   detached `rm` that outlives it (`releaseReplacedFilesAfterExit`); if `rm` cannot be started, in the process.
 *
 * Until it is gone, a second Ctrl-C removes it as it removes unfinished outputs (pathsBeingReleased).
 */
import { unlink } from "node:fs/promises";

let afterExit = false;
const releasing = new Set<string>();

/** For a process about to exit once its work is done (the CLI): replaced files are removed by a detached `rm`. */
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

/** Hands `path` to a detached `rm`; false when it could not be started at all. */
function removeAfterExit(path: string): boolean {
  try {
    // Loaded only here: a conversion that replaces nothing does without node:child_process.
    const { spawn } = process.getBuiltinModule("node:child_process");
    const child = spawn("rm", ["-f", "--", path], { detached: true, stdio: "ignore" });
    child.on("error", () => removeInProcess(path));
    child.unref();
    return true;
  } catch {
    return false;
  }
}
