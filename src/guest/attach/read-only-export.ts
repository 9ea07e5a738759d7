import { spawn } from "node:child_process";
import { execFile } from "node:child_process";
import { mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { GuestAccessError } from "../guest-access-error.js";
import type { GuestJournal } from "../journal/guest-journal.js";
import { isMountPoint } from "../journal/mount-table.js";

const execFileP = promisify(execFile);

/** qemu's names for the formats where they differ from ours. */
const QEMU_FORMAT: Readonly<Record<string, string>> = { vhd: "vpc" };

const START_WAIT_MS = 15_000;
const STOP_WAIT_MS = 10_000;

/**
 * Shows an image's virtual disk as a raw file, read-only, without copying it: qemu-storage-daemon opens the
 * image with read-only=on (so it works on read-only storage) and exports it over FUSE at a file in the state
 * folder, never beside the image. Loop devices then go over that file. The export is in the journal before
 * it exists, so every exit path (and `guest cleanup` after a kill -9) stops it.
 */
export async function exportReadOnly(
  journal: GuestJournal,
  image: string,
  format: string,
  /** The state folder's `exports`: only this host's state, never beside the image. */
  dir: string,
): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const name = `${process.pid}-${Date.now()}`;
  const mountpoint = join(dir, `${name}.raw`);
  const pidFile = join(dir, `${name}.pid`);
  await journal.record({ kind: "export", mountpoint, pidFile });
  await writeFile(mountpoint, "", { mode: 0o600 });
  // JSON blockdev specs: a file name holding a comma cannot break the option syntax.
  const file = JSON.stringify({ driver: "file", filename: image, "read-only": true, "node-name": "file0" });
  const disk = JSON.stringify({
    driver: QEMU_FORMAT[format] ?? format,
    file: "file0",
    "read-only": true,
    "node-name": "disk0",
  });
  const child = spawn(
    "qemu-storage-daemon",
    [
      "--blockdev",
      file,
      "--blockdev",
      disk,
      "--export",
      `type=fuse,id=export0,node-name=disk0,mountpoint=${mountpoint},writable=off`,
      "--pidfile",
      pidFile,
    ],
    { stdio: ["ignore", "ignore", "pipe"], detached: false },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4096)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.on("error", (e) => void (stderr += e.message));
  const deadline = Date.now() + START_WAIT_MS;
  for (;;) {
    if (await isMountPoint(mountpoint)) break;
    const code = await Promise.race([exited, sleep(50).then(() => undefined)]);
    if (code !== undefined || Date.now() > deadline)
      throw new GuestAccessError(
        `cannot open ${image} read-only through qemu-storage-daemon: ${stderr.trim() || `no export after ${START_WAIT_MS / 1000} s`}`,
      );
  }
  // The daemon lives until the journal stops it, not until this process's event loop ends.
  child.stderr.destroy();
  child.unref();
  return mountpoint;
}

/** Stops an export (the daemon by its pid file, checked to be the one serving `mountpoint`) and removes its files. */
export async function stopExport(mountpoint: string, pidFile: string): Promise<void> {
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
  if (pid > 0) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(mountpoint)) {
      process.kill(pid, "SIGTERM");
      const deadline = Date.now() + STOP_WAIT_MS;
      while ((await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).includes(mountpoint)) {
        if (Date.now() > deadline) throw new GuestAccessError(`qemu-storage-daemon ${pid} did not stop`);
        await sleep(20);
      }
    }
  }
  if (await isMountPoint(mountpoint)) await execFileP("fusermount3", ["-u", mountpoint]);
  for (const path of [mountpoint, pidFile])
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
}
