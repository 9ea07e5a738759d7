/**
 * A copied filesystem grown to fill its partition, with the host's own tools: ext2/3/4 offline, before the guest
 * is mounted (e2fsck -f first, which resize2fs demands; online resizing was refused here with EPERM), XFS and
 * btrfs online on their mount point, the only way their tools grow them.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

async function run(tool: string, args: string[], okCodes: readonly number[] = [0]): Promise<void> {
  await execFileP(tool, args).catch((e: NodeJS.ErrnoException & { stderr?: string; code?: unknown }) => {
    if (e.code === "ENOENT") throw new Error(`${tool} is not installed on this host`);
    if (typeof e.code === "number" && okCodes.includes(e.code)) return;
    throw new Error(`${tool} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim()}`);
  });
}

/** Whether `type` is grown before mounting (growOffline) rather than on its mount point (growMounted). */
export function growsOffline(type: string): boolean {
  return type.startsWith("ext");
}

/** Grows an ext2/3/4 filesystem on an unmounted device to the device's size. */
export async function growOffline(device: string): Promise<void> {
  // e2fsck's exit status 1 is "errors corrected": the filesystem is consistent after it.
  await run("e2fsck", ["-f", "-p", device], [0, 1]);
  await run("resize2fs", [device]);
}

/** Grows a mounted XFS or btrfs filesystem to its device's size; false for a type that is not grown so. */
export async function growMounted(type: string, mountPoint: string): Promise<boolean> {
  if (type === "xfs") await run("xfs_growfs", [mountPoint]);
  else if (type === "btrfs") await run("btrfs", ["filesystem", "resize", "max", mountPoint]);
  else return false;
  return true;
}
