import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, open, readFile, unlink, writeFile } from "node:fs/promises";
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
  const exportSpec = JSON.stringify({
    type: "fuse",
    id: "export0",
    "node-name": "disk0",
    mountpoint,
    writable: false,
  });
  // The daemon outlives this call (and, after a kill -9, this process): its messages go to a file of its own.
  const log = await open(logPathFor(mountpoint), "w", 0o600);
  let child: ChildProcess;
  try {
    // setpriv --pdeathsig: should this process die (kill -9), the daemon goes with it, and with the last
    // process in the CLI's private mount namespace gone, the guest mounts in it go too (for `guest cleanup`).
    child = spawn(
      "setpriv",
      [
        "--pdeathsig",
        "TERM",
        "--",
        "qemu-storage-daemon",
        ...["--blockdev", file, "--blockdev", disk, "--export", exportSpec, "--pidfile", pidFile],
      ],
      { stdio: ["ignore", "ignore", log.fd] },
    );
  } finally {
    await log.close();
  }
  let failure = "";
  child.on("error", (e) => void (failure = e.message));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const deadline = Date.now() + START_WAIT_MS;
  while (!(await isMountPoint(mountpoint))) {
    const ended = await Promise.race([exited.then(() => true), sleep(50).then(() => false)]);
    if (ended || Date.now() > deadline) {
      child.kill();
      const said = (await readFile(logPathFor(mountpoint), "utf8").catch(() => "")).trim();
      throw new GuestAccessError(
        `cannot open ${image} read-only through qemu-storage-daemon: ${said || failure || `no export after ${START_WAIT_MS / 1000} s`}`,
      );
    }
  }
  // The daemon lives until the journal stops it, not until this process's event loop ends.
  child.unref();
  return mountpoint;
}

function logPathFor(mountpoint: string): string {
  return mountpoint.replace(/\.raw$/, ".log");
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
  for (const path of [mountpoint, pidFile, logPathFor(mountpoint)])
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
}
