import { unlinkSync } from "node:fs";
import { pendingTemporaryPaths } from "../formats/io/replacing-output.js";
import { pathsBeingReleased } from "../formats/io/old-output-release.js";

/**
 * How long a cancelled job may take to undo its work before the process stops anyway: long enough for jobs
 * that undo host or cloud state (unmounts, loop devices, a half-uploaded image), whose journal lets
 * `chromogenic guest cleanup` finish what they could not.
 */
export const UNDO_SECONDS = 30;
/** What a cancelled convert or export has to undo is a temporary file or two: seconds are plenty. */
export const FILE_UNDO_SECONDS = 5;

/**
 * Ctrl-C and SIGTERM cancel the running job through an AbortSignal, so every layer undoes its work on the
 * normal error path. A second signal means "now", and so does the first one once `undoSeconds` have passed:
 * the undoing may never end (a read of a hung device or NFS share sits on a libuv threadpool thread, which
 * nothing can interrupt, and which even process.exit() waits for), so the process then removes its temporary
 * outputs synchronously and ends by the signal it was sent — what shells report as 130 or 143.
 */
export function cancelOnSignals(undoSeconds = UNDO_SECONDS): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let count = 0;
  const handler = (sig: NodeJS.Signals) => {
    count++;
    if (count > 1) stopNow(sig, "stopping at once");
    process.stderr.write(
      `\nchromogenic: ${sig} received, cancelling (again to stop at once; stopping anyway in ${undoSeconds} s)\n`,
    );
    controller.abort();
    // Unref'd: a job that undoes its work in time ends the process as usual, with its own exit code. The
    // timer outlives dispose(): the job may have returned while something still holds the event loop.
    setTimeout(
      () => stopNow(sig, `still running ${undoSeconds} s after ${sig}, stopping now`),
      undoSeconds * 1000,
    ).unref();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}

/**
 * Removes the temporary outputs and ends the process by `sig`. Not process.exit(): it joins the threadpool's
 * threads on the way out, and would wait for ever on one stuck in a read. With our handlers gone the signal's
 * default action applies, which ends the process whatever its threads are doing.
 */
function stopNow(sig: NodeJS.Signals, why: string): never {
  process.stderr.write(`chromogenic: ${why}\n`);
  for (const path of [...pendingTemporaryPaths(), ...pathsBeingReleased()]) {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
  process.removeAllListeners("SIGINT");
  process.removeAllListeners("SIGTERM");
  process.kill(process.pid, sig);
  // Only if the signal's disposition was inherited as "ignore" does this line run.
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}
