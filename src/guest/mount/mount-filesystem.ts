import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { GuestJournal } from "../journal/guest-journal.js";

const execFileP = promisify(execFile);

/**
 * Mount options for a guest filesystem. Always nosuid,nodev: a guest's setuid binaries and device nodes must
 * mean nothing on the host. Read-only mounts also skip journal replay (noload / norecovery), which would
 * otherwise write to the image — or fail outright on a read-only loop device. XFS gets nouuid because clones
 * of one image share a UUID, and the host may already have one mounted.
 */
export function mountOptions(type: string, readOnly: boolean, extra: readonly string[] = []): string {
  const options = ["nosuid", "nodev", readOnly ? "ro" : "rw", ...extra];
  if (readOnly && type.startsWith("ext") && type !== "ext2") options.push("noload");
  if (type === "xfs") options.push("nouuid", ...(readOnly ? ["norecovery"] : []));
  return options.join(",");
}

/**
 * Mounts one guest filesystem at `target` (an existing folder, already resolved inside the guest so that it
 * holds no symlink mount(8) could follow), recorded in the journal first.
 */
export async function mountFilesystem(
  journal: GuestJournal,
  device: string,
  target: string,
  type: string,
  options: string,
): Promise<number> {
  const id = await journal.record({ kind: "mount", target, source: device });
  await execFileP("mount", ["-t", type, "-o", options, device, target]);
  return id;
}
