/** Looking into a raw guest disk's first partition (at 1 MiB, where these suites' guests have it) from the host. */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { runOk } from "../../helpers/tools.js";

export const PARTITION_OFFSET = 2 ** 20;

/** The UUID blkid reads from the filesystem at `offset`. */
export async function filesystemUuid(raw: string, offset = PARTITION_OFFSET): Promise<string> {
  return (await runOk("blkid", ["-p", "-o", "value", "-s", "UUID", "--offset", String(offset), raw])).trim();
}

/** Runs `look` with the filesystem at `offset` mounted read-only in a folder under `dir`. */
export async function inFilesystem<T>(
  raw: string,
  dir: string,
  look: (root: string) => Promise<T>,
  offset = PARTITION_OFFSET,
): Promise<T> {
  const mnt = await mkdtemp(join(dir, "look-"));
  await runOk("mount", ["-o", `ro,loop,offset=${offset}`, raw, mnt]);
  try {
    return await look(mnt);
  } finally {
    await runOk("umount", [mnt]);
    await rm(mnt, { recursive: true });
  }
}
