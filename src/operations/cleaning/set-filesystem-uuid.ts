import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** The tool that gives each filesystem type a new UUID on its unmounted device (as libguestfs's set_uuid). */
const TOOLS: Readonly<Record<string, (uuid: string, device: string) => readonly [string, string[]]>> = {
  ext2: (uuid, device) => ["tune2fs", ["-U", uuid, device]],
  ext3: (uuid, device) => ["tune2fs", ["-U", uuid, device]],
  ext4: (uuid, device) => ["tune2fs", ["-U", uuid, device]],
  xfs: (uuid, device) => ["xfs_admin", ["-U", uuid, device]],
  // -f: btrfstune otherwise asks for confirmation on the terminal.
  btrfs: (uuid, device) => ["btrfstune", ["-f", "-U", uuid, device]],
};

export function canSetUuid(type: string): boolean {
  return type in TOOLS;
}

/**
 * The tool a type's UUID change needs when it is not installed here (checked while planning, so a missing
 * tool keeps the UUID rather than failing after the files naming it were edited).
 */
export async function missingUuidTool(type: string): Promise<string | undefined> {
  const tool = uuidTool(type);
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":"))
    if (
      dir &&
      (await access(join(dir, tool), constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      return undefined;
  return tool;
}

/** The command that sets it, for messages ("tune2fs"). */
export function uuidTool(type: string): string {
  return TOOLS[type]!("", "")[0];
}

const ATTEMPTS = 5;
const RETRY_MS = 300;

/**
 * Gives the filesystem on `device` (unmounted) the UUID `uuid`. Two things are waited out rather than failed
 * on: the unmount makes udev probe the device, and a probe holding it open makes tune2fs take it for mounted
 * (retried a few times); and on ext4 with metadata checksums tune2fs rewrites every checksum and so insists on
 * a filesystem checked since its last mount: it gets `e2fsck -f -p` (preen: only the fixes that need no
 * decision; anything more is a failure) first.
 */
export async function setFilesystemUuid(device: string, type: string, uuid: string): Promise<void> {
  const [command, args] = TOOLS[type]!(uuid, device);
  let checked = false;
  for (let attempt = 1; ; attempt++) {
    try {
      await execFileP(command, args);
      return;
    } catch (e) {
      const said = `${(e as { stdout?: string }).stdout ?? ""}${(e as { stderr?: string }).stderr ?? ""}`;
      if (command === "tune2fs" && !checked && /freshly checked filesystem/.test(said)) {
        checked = true;
        await execFileP("e2fsck", ["-f", "-p", device]).catch((check: { code?: number }) => {
          // 1: errors corrected without a decision; the filesystem is now consistent.
          if (check.code !== 1) throw check;
        });
        continue;
      }
      if (attempt >= ATTEMPTS) throw e;
      await sleep(RETRY_MS);
    }
  }
}
