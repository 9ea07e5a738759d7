import { unlinkSync } from "node:fs";
import { pendingTemporaryPaths } from "../formats/io/replacing-output.js";
import { pathsBeingReleased } from "../formats/io/old-output-release.js";

/**
 * Ctrl-C and SIGTERM cancel the running job through an AbortSignal, so every layer undoes its work on the
 * normal error path. A second signal means "now": temporary outputs are removed synchronously and we exit.
 */
export function cancelOnSignals(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let count = 0;
  const handler = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      process.stderr.write(`\nchromogenic: ${sig} received, cancelling (again to stop at once)\n`);
      controller.abort();
      return;
    }
    for (const path of [...pendingTemporaryPaths(), ...pathsBeingReleased()]) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
    process.exit(sig === "SIGINT" ? 130 : 143);
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
