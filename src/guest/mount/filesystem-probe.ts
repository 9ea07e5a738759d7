import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

export interface FilesystemIdentity {
  readonly type: string;
  readonly uuid?: string;
  readonly label?: string;
}

/** The filesystems we mount; anything else in the guest (swap, vfat ESP, unknown) is left alone. */
export const MOUNTABLE_TYPES: ReadonlySet<string> = new Set(["ext2", "ext3", "ext4", "xfs", "btrfs"]);

/**
 * Identifies the filesystem on a device by its superblock with `blkid -p` (low-level probing: it reads the
 * device itself, not a cache, so a stale host cache or udev database cannot mislead us). Null when blkid
 * recognises nothing.
 */
export async function probeFilesystem(device: string): Promise<FilesystemIdentity | null> {
  const result = await execFileP("blkid", ["-p", "-o", "export", device]).catch((e: { code?: number }) => {
    if (e.code === 2) return null; // nothing recognised
    throw e;
  });
  if (!result) return null;
  const fields = new Map<string, string>();
  for (const line of result.stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const type = fields.get("TYPE");
  if (!type) return null;
  return { type, uuid: fields.get("UUID"), label: fields.get("LABEL") };
}
