import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { GuestJournal } from "../journal/guest-journal.js";

const execFileP = promisify(execFile);

/**
 * Attaches `sizeLimit` bytes of `file` at `offset` to a free loop device. Partitions are attached one by one
 * by offset rather than with `losetup -P`, which needs udev-created partition nodes and cannot be limited to
 * the ranges the table was checked for.
 */
export async function attachLoop(
  journal: GuestJournal,
  file: string,
  offset: number,
  sizeLimit: number,
  readOnly: boolean,
): Promise<string> {
  const id = await journal.record({ kind: "loop", file, offset, sizeLimit });
  const args = ["--find", "--show", "--offset", String(offset), "--sizelimit", String(sizeLimit)];
  if (readOnly) args.push("--read-only");
  const { stdout } = await execFileP("losetup", [...args, file]);
  const device = stdout.trim();
  await journal.noteDevice(id, device);
  return device;
}
