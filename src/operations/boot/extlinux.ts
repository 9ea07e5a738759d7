/**
 * extlinux (Debian's extlinux package, syslinux 6.04), the boot loader for disks where GRUB's core image has no
 * room: extlinux keeps its first stage in the boot filesystem's own first sector (its VBR) and the rest in a
 * file of that filesystem (ldlinux.sys), so it needs no gap after the MBR; syslinux's mbr.bin in the MBR starts
 * the active partition's VBR. It boots only from a primary partition, and here only from ext2/3/4 (what is
 * tested; syslinux's XFS and btrfs support has limits GRUB's has not).
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { MissingHostToolError } from "./boot-errors.js";
import { backUp, ensureFolders, type GuestBootChange } from "./guest-boot-folders.js";

const execFileP = promisify(execFile);

/** syslinux's MBR code: boots the active partition's VBR. */
export const EXTLINUX_MBR = "/usr/lib/EXTLINUX/mbr.bin";

export interface ExtlinuxConfigRequest {
  readonly title: string;
  /** Paths inside the boot filesystem. */
  readonly kernel: string;
  readonly initramfs: string | null;
  readonly kernelArguments: readonly string[];
}

export function extlinuxConfig(request: ExtlinuxConfigRequest): string {
  return [
    "# Written by chromogenic bootable. The guest's earlier extlinux folder, if any, is beside this one as",
    "# extlinux.before-chromogenic.",
    "SERIAL 0 115200",
    "DEFAULT linux",
    "PROMPT 0",
    "TIMEOUT 20",
    "LABEL linux",
    `  MENU LABEL ${request.title}`,
    `  LINUX ${request.kernel}`,
    ...(request.initramfs ? [`  INITRD ${request.initramfs}`] : []),
    `  APPEND ${request.kernelArguments.join(" ")}`,
    "",
  ].join("\n");
}

/**
 * Writes extlinux's folder into the mounted guest (what it had there kept under a backup name) and installs the
 * loader with the host's `extlinux --install`, which writes ldlinux.sys there and the VBR of the device the
 * folder's filesystem is mounted from: the working disk's loop device. In a dry run only reports.
 */
export async function installExtlinuxFiles(request: {
  readonly root: string;
  readonly config: string;
  readonly dryRun: boolean;
}): Promise<GuestBootChange[]> {
  const { root, dryRun } = request;
  const changes: GuestBootChange[] = [];
  const boot = await ensureFolders(root, "/boot", dryRun, changes);
  const folder = join(boot, "extlinux");
  await backUp(root, folder, "the guest's extlinux folder", dryRun, changes);
  changes.push({ path: "/boot/extlinux", action: "create", detail: "folder" });
  changes.push({ path: "/boot/extlinux/extlinux.conf", action: "create", detail: "extlinux configuration" });
  changes.push({ path: "/boot/extlinux/ldlinux.sys", action: "install", detail: "extlinux, and the partition's VBR" });
  if (dryRun) return changes;
  await ensureFolders(root, "/boot/extlinux", false, []);
  await writeFile(join(folder, "extlinux.conf"), request.config, { flag: "wx", mode: 0o644 });
  await execFileP("extlinux", ["--install", folder]).catch((e: NodeJS.ErrnoException & { stderr?: string }) => {
    if (e.code === "ENOENT")
      throw new MissingHostToolError("extlinux is not installed on this host: install Debian's extlinux");
    throw new Error(`extlinux --install failed: ${(e.stderr ?? e.message).trim()}`);
  });
  return changes;
}

/** Sector 0 with syslinux's MBR code; its signature and table are kept. */
export async function extlinuxBootSector(sector0: Buffer): Promise<Buffer> {
  const code = await readFile(EXTLINUX_MBR).catch(() => {
    throw new MissingHostToolError(`${EXTLINUX_MBR} is missing: install Debian's extlinux`);
  });
  const out = Buffer.from(sector0);
  code.copy(out, 0, 0, Math.min(code.length, 440));
  return out;
}
