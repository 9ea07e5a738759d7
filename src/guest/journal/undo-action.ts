import { execFile } from "node:child_process";
import { lstat, rmdir, unlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { LVM_ENV, lvmConfig } from "../attach/lvm-config.js";
import type { JournalEntry } from "./journal-entry.js";
import { stopExport } from "../attach/read-only-export.js";
import { isMountPoint } from "./mount-table.js";
import { GuestAccessError } from "../guest-access-error.js";

const execFileP = promisify(execFile);

/** Loop devices currently backed by `file` at `offset` (what a run that died before recording the name left). */
export async function loopDevicesFor(file: string, offset: number): Promise<string[]> {
  const { stdout } = await execFileP("losetup", [
    "--noheadings",
    "--output",
    "NAME",
    "--associated",
    file,
    "--offset",
    String(offset),
  ]);
  return stdout
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

/** How long a detach deferred by another opener of the device is waited for. */
const DETACH_WAIT_MS = 10_000;

/**
 * `losetup --detach` succeeds at once even while another process has the device open — an LVM or blkid scan of
 * every block device, as the OpenStack test stack's cinder-volume runs periodically — and the kernel then only
 * marks the device to detach itself when that opener closes it. Undone must mean gone (and the backing file
 * free for the next undo to remove), so wait for it; a device still attached after DETACH_WAIT_MS is a
 * failure the journal keeps for `guest cleanup`.
 */
async function waitUntilDetached(device: string, file: string, offset: number): Promise<void> {
  const deadline = Date.now() + DETACH_WAIT_MS;
  while ((await loopDevicesFor(file, offset)).includes(device)) {
    if (Date.now() > deadline) {
      throw new GuestAccessError(
        `${device} is still attached: another process holds it open (it detaches when that one closes it)`,
      );
    }
    await sleep(20);
  }
}

/**
 * Undoes one recorded change; doing nothing when it was never made (the run died between writing the record
 * and making the change) or is already undone. Throws when the change is still in place and cannot be undone.
 */
export async function undoAction(entry: JournalEntry): Promise<void> {
  const a = entry.action;
  switch (a.kind) {
    case "mount":
      if (await isMountPoint(a.target)) await execFileP("umount", [a.target]);
      return;
    case "lvm":
      await execFileP("vgchange", ["--activate", "n", "--config", lvmConfig(a.devices), a.volumeGroup], {
        env: LVM_ENV,
      }).catch((e: { stderr?: string }) => {
        // A group that is gone or was never activated is fine; anything else is a real failure.
        if (!/not found|No such/i.test(e.stderr ?? "")) throw e;
      });
      return;
    case "loop": {
      // The device we noted, if it still maps what we attached; only when the run died before noting it, every
      // device over that file and offset (another run's device over the same range would be detached too).
      const devices = entry.device
        ? (await loopDevicesFor(a.file, a.offset)).filter((d) => d === entry.device)
        : await loopDevicesFor(a.file, a.offset);
      for (const device of devices) {
        await execFileP("losetup", ["--detach", device]);
        await waitUntilDetached(device, a.file, a.offset);
      }
      return;
    }
    case "directory":
      await removeIfPresent(rmdir, a.path);
      return;
    case "export":
      await stopExport(a.mountpoint, a.pidFile);
      return;
    case "file":
      await removeIfPresent(unlink, a.path);
      return;
  }
}

/**
 * Removes `path` with `remove`; a path that is not there is already undone. On a read-only filesystem the
 * removal fails with EROFS even for a path that was never made (the journal records a file before creating
 * it, and the creation failed): look before calling that a failure.
 */
async function removeIfPresent(remove: (path: string) => Promise<void>, path: string): Promise<void> {
  try {
    await remove(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    const present = await lstat(path).then(
      () => true,
      (l: NodeJS.ErrnoException) => l.code !== "ENOENT",
    );
    if (present) throw e;
  }
}
