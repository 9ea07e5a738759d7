import { readFile } from "node:fs/promises";

/** Whether `target` is a mount point right now, from the kernel's own table (not from a stat trick). */
export async function isMountPoint(target: string): Promise<boolean> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const escaped = target.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
  return info.split("\n").some((line) => line.split(" ")[4] === escaped);
}
