/**
 * GRUB's files in the guest: the host's i386-pc modules (the ones the core image was made with, so `insmod`
 * finds matching code) and grub.cfg, under the boot filesystem's grub folder. What the guest had there is kept
 * under a backup name, never deleted; a /boot or /boot/grub that is a link is refused (guest-boot-folders.ts).
 */
import { constants } from "node:fs";
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GRUB_I386_PC_DIR } from "./grub-core-image.js";
import { backUp, ensureFolders, guestName, type GuestBootChange } from "./guest-boot-folders.js";

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
  const hostGrub = await ensureFolders(root, grubDir, dryRun, changes);

  const modules = join(hostGrub, "i386-pc");
  const configPath = join(hostGrub, "grub.cfg");
  await backUp(root, modules, "the guest's GRUB modules", dryRun, changes);
  await backUp(root, configPath, "the guest's GRUB configuration", dryRun, changes);

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
