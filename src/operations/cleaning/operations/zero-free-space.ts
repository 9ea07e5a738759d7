import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { open, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";
import { defineOperation } from "../cleaning-operation.js";
import type { CleaningMount } from "../cleaning-context.js";

function run(cmd: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", (e) => resolve({ code: -1, out: e.message }));
    child.on("exit", (code) => resolve({ code: code ?? -1, out }));
  });
}

/**
 * Zeroes a filesystem's free space by filling it with a zero file and removing it, for when trimming is not
 * possible: the zeros are then left out of the output by the converter's zero detection.
 */
async function zeroFill(mount: CleaningMount, signal?: () => void): Promise<number> {
  const path = join(mount.hostPath, `.chromogenic-zero-${process.pid}`);
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  const block = Buffer.alloc(4 * 2 ** 20);
  let written = 0;
  try {
    for (;;) {
      signal?.();
      try {
        const { bytesWritten } = await fh.write(block, 0, block.length, written);
        written += bytesWritten;
        if (bytesWritten < block.length) break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOSPC" || (e as NodeJS.ErrnoException).code === "EDQUOT") break;
        throw e;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
    await unlink(path);
  }
  return written;
}

export default defineOperation({
  name: "zero-free-space",
  description:
    "Trim (host fstrim through the loop device, punching holes in the working copy) or zero each guest filesystem's free space",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    // Only the guest's own mounts (from the session) are trimmed: on a plain folder (tests) there are none,
    // so the host's filesystem is never touched.
    if (!ctx.mounts.length) {
      ctx.warn("zero-free-space: no guest filesystems mounted by this run; nothing trimmed");
      return;
    }
    for (const mount of ctx.mounts) {
      ctx.checkAborted();
      const fs = await statfs(mount.hostPath);
      const free = fs.bfree * fs.bsize;
      if (ctx.dryRun) {
        ctx.recordOther({
          action: "zero-free-space",
          path: mount.guestPath,
          detail: `would trim ${free} free bytes`,
          bytes: free,
        });
        continue;
      }
      // Blocks freed by the removals above only become free space when the journal commits them: without a
      // syncfs first, fstrim skips exactly the space cleaning just freed.
      await run("sync", ["-f", mount.hostPath]);
      const r = await run("fstrim", ["-v", mount.hostPath]);
      if (r.code === 0) {
        const trimmed = Number(/\((\d+) bytes\)/.exec(r.out)?.[1] ?? free);
        ctx.recordOther({
          action: "zero-free-space",
          path: mount.guestPath,
          detail: `fstrim (${mount.type})`,
          bytes: trimmed,
        });
        continue;
      }
      const written = await zeroFill(mount, () => ctx.checkAborted());
      ctx.recordOther({
        action: "zero-free-space",
        path: mount.guestPath,
        detail: `zero-filled (fstrim failed: ${r.out.trim()})`,
        bytes: written,
      });
    }
  },
});
