import { lstat, readdir, readFile } from "node:fs/promises";
import { resolveGuestPath } from "./guest-path.js";

/** Guest files larger than this are not read whole for inspection (a hostile /etc/passwd of 10 GiB). */
const MAX_INSPECTED_FILE = 4 * 2 ** 20;

/**
 * Reads a small regular guest file as text, following guest symlinks inside the guest root only; null when it
 * is missing, not a regular file (a FIFO would block us), too large, or unreadable.
 */
export async function readGuestText(root: string, guestPath: string): Promise<string | null> {
  try {
    const host = await resolveGuestPath(root, guestPath);
    const st = await lstat(host);
    if (!st.isFile() || st.size > MAX_INSPECTED_FILE) return null;
    return await readFile(host, "utf8");
  } catch {
    return null;
  }
}

/** Whether a guest path exists (after resolving guest symlinks inside the guest root). */
export async function guestPathExists(root: string, guestPath: string): Promise<boolean> {
  try {
    await lstat(await resolveGuestPath(root, guestPath));
    return true;
  } catch {
    return false;
  }
}

/** Names in a guest folder, or [] when it is missing or not a folder. */
export async function listGuestDir(root: string, guestPath: string): Promise<string[]> {
  try {
    return (await readdir(await resolveGuestPath(root, guestPath))).sort();
  } catch {
    return [];
  }
}
