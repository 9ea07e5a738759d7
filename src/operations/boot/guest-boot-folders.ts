/**
 * Folders and names in the guest's /boot, reached from the guest root down with lstat and never through a link:
 * a /boot or loader folder that is a link is refused (the loader reads its filesystem on its own terms, and a
 * link's target may not even be on that filesystem), so nothing outside the guest is read or written whatever
 * the guest holds. What the guest had under a name the loader needs is kept under a backup name.
 */
import { lstat, mkdir, readlink, rename } from "node:fs/promises";
import { join } from "node:path";
import { NotBootableError } from "./boot-errors.js";

export interface GuestBootChange {
  readonly path: string;
  readonly action: "create" | "backup" | "copy" | "install";
  readonly detail: string;
}

/** The suffix of what the guest had before (grub.cfg.before-chromogenic, then .2, .3, … if that is taken). */
export const BACKUP_SUFFIX = ".before-chromogenic";

export async function lstatOrNull(path: string) {
  return lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return null;
    throw e;
  });
}

/** A folder of the guest that must be a real folder (or absent, to be made); a link or a file is refused. */
export async function checkFolder(host: string, guestPath: string): Promise<boolean> {
  const st = await lstatOrNull(host);
  if (!st) return false;
  if (st.isSymbolicLink())
    throw new NotBootableError(
      `the guest's ${guestPath} is a symbolic link (to ${await readlink(host)}): the boot loader's files ` +
        "cannot be written through it; make it a folder first",
    );
  if (!st.isDirectory()) throw new NotBootableError(`the guest's ${guestPath} is not a folder`);
  return true;
}

export async function freeBackupName(host: string): Promise<string> {
  for (let n = 1; n < 100; n++) {
    const candidate = `${host}${BACKUP_SUFFIX}${n === 1 ? "" : `.${n}`}`;
    if (!(await lstatOrNull(candidate))) return candidate;
  }
  throw new NotBootableError(`${host}: 99 backups already exist`);
}

/** The guest path of a host path under `root`. */
export function guestName(root: string, host: string): string {
  return host.slice(root.length) || "/";
}

/**
 * Makes sure every folder of `guestDir` exists as a real folder, component by component from the root (so no
 * link is followed on the way), creating what is missing; returns its host path. In a dry run only reports.
 */
export async function ensureFolders(
  root: string,
  guestDir: string,
  dryRun: boolean,
  changes: GuestBootChange[],
): Promise<string> {
  const parts = guestDir.split("/").filter(Boolean);
  let exists = true;
  for (let i = 1; i <= parts.length; i++) {
    const guestPath = `/${parts.slice(0, i).join("/")}`;
    const host = join(root, ...parts.slice(0, i));
    exists = exists && (await checkFolder(host, guestPath));
    if (!exists) {
      changes.push({ path: guestPath, action: "create", detail: "folder" });
      if (!dryRun) await mkdir(host, { mode: 0o755 });
    }
  }
  return join(root, ...parts);
}

/** Moves what the guest has at `host` (anything: a file, a folder, a link) to a free backup name, reported. */
export async function backUp(
  root: string,
  host: string,
  what: string,
  dryRun: boolean,
  changes: GuestBootChange[],
): Promise<void> {
  if (!(await lstatOrNull(host))) return;
  const backup = await freeBackupName(host);
  changes.push({
    path: guestName(root, host),
    action: "backup",
    detail: `${what}, kept as ${guestName(root, backup)}`,
  });
  // rename(2) moves the name itself: a link is moved, never followed.
  if (!dryRun) await rename(host, backup);
}
