/**
 * GRUB's files in the guest: the host's i386-pc modules (the ones the core image was made with, so `insmod`
 * finds matching code) and grub.cfg, under the boot filesystem's grub folder. What the guest had there is kept
 * under a backup name, never deleted. Every name is reached with lstat and never through a link: a guest whose
 * /boot or /boot/grub is a link is refused (the loader reads the filesystem on its own terms, and a link's
 * target may not even be on that filesystem), so nothing outside the guest is read or written whatever it holds.
 */
import { constants } from "node:fs";
import { copyFile, lstat, mkdir, readdir, readlink, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { NotBootableError } from "./boot-errors.js";
import { GRUB_I386_PC_DIR } from "./grub-core-image.js";

export interface GuestBootChange {
  readonly path: string;
  readonly action: "create" | "backup" | "copy";
  readonly detail: string;
}

/** The suffix of what the guest had before (grub.cfg.before-chromogenic, then .2, .3, … if that is taken). */
export const BACKUP_SUFFIX = ".before-chromogenic";

async function lstatOrNull(path: string) {
  return lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return null;
    throw e;
  });
}

/** A folder of the guest that must be a real folder (or absent, to be made); a link or a file is refused. */
async function checkFolder(host: string, guestPath: string): Promise<boolean> {
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

async function freeBackupName(host: string): Promise<string> {
  for (let n = 1; n < 100; n++) {
    const candidate = `${host}${BACKUP_SUFFIX}${n === 1 ? "" : `.${n}`}`;
    if (!(await lstatOrNull(candidate))) return candidate;
  }
  throw new NotBootableError(`${host}: 99 backups already exist`);
}

export interface GrubFilesRequest {
  /** Host folder of the mounted guest root. */
  readonly root: string;
  /** The grub folder as the guest sees it: "/boot/grub". */
  readonly grubDir: string;
  readonly config: string;
  readonly dryRun: boolean;
}

/** Writes (or, in a dry run, lists) the changes; returns them in the order made. */
export async function installGrubFiles(request: GrubFilesRequest): Promise<GuestBootChange[]> {
  const { root, grubDir, dryRun } = request;
  const changes: GuestBootChange[] = [];
  // Each component from the root down, so that no link is ever followed on the way.
  const parts = grubDir.split("/").filter(Boolean);
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
  const hostGrub = join(root, ...parts);

  const modules = join(hostGrub, "i386-pc");
  const configPath = join(hostGrub, "grub.cfg");
  for (const [host, what] of [
    [modules, "the guest's GRUB modules"],
    [configPath, "the guest's GRUB configuration"],
  ] as const) {
    if (!(await lstatOrNull(host))) continue;
    const backup = await freeBackupName(host);
    changes.push({
      path: guestName(root, host),
      action: "backup",
      detail: `${what}, kept as ${guestName(root, backup)}`,
    });
    if (!dryRun) await rename(host, backup);
  }

  const files = (await readdir(GRUB_I386_PC_DIR)).filter((n) => n.endsWith(".mod") || n.endsWith(".lst")).sort();
  changes.push({ path: guestName(root, modules), action: "copy", detail: `${files.length} GRUB modules and lists` });
  if (!dryRun) {
    await mkdir(modules, { mode: 0o755 });
    for (const name of files)
      await copyFile(join(GRUB_I386_PC_DIR, name), join(modules, name), constants.COPYFILE_EXCL);
  }
  changes.push({ path: guestName(root, configPath), action: "create", detail: "GRUB configuration" });
  // "wx": O_CREAT|O_EXCL, which fails rather than follow anything that took the name meanwhile.
  if (!dryRun) await writeFile(configPath, request.config, { flag: "wx", mode: 0o644 });
  return changes;
}

function guestName(root: string, host: string): string {
  return host.slice(root.length) || "/";
}
