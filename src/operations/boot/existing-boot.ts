/**
 * Whether a disk already boots: boot code in its MBR that a loader recognises (grub-boot-sectors.ts), and that
 * loader's configuration in the guest naming a kernel that exists. Such a disk is copied unchanged.
 */
import { lstat } from "node:fs/promises";
import { posix } from "node:path";
import { readGuestText } from "../../guest/guest-files.js";
import { resolveGuestPath } from "../../guest/guest-path.js";

export interface ExistingBoot {
  readonly loader: "grub" | "syslinux";
  readonly config: string;
  readonly kernel: string;
}

const CONFIGS = {
  grub: ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/grub/menu.lst", "/boot/grub/grub.conf"],
  syslinux: [
    "/boot/extlinux/extlinux.conf",
    "/boot/extlinux.conf",
    "/extlinux.conf",
    "/boot/syslinux/syslinux.cfg",
    "/syslinux/syslinux.cfg",
  ],
} as const;

/** Kernel paths a configuration names: GRUB's linux/linux16/kernel lines, syslinux's KERNEL/LINUX. */
export function kernelsNamed(config: string): string[] {
  const out: string[] = [];
  for (const line of config.split("\n")) {
    const m = /^\s*(?:linux|linux16|linuxefi|kernel)\s+(\S+)/i.exec(line);
    if (!m) continue;
    // A GRUB device prefix ("(hd0,1)/vmlinuz") names the filesystem, not a folder; variables are not followed.
    const path = m[1]!.replace(/^\([^)]*\)/, "");
    if (!path.includes("$")) out.push(path);
  }
  return out;
}

async function isKernelFile(root: string, guestPath: string): Promise<boolean> {
  const st = await lstat(await resolveGuestPath(root, guestPath)).catch(() => null);
  return !!st?.isFile() && st.size > 0;
}

/**
 * The configuration of `loader` that names an existing kernel, looked for where that loader keeps it. A path is
 * tried as the guest sees it and inside /boot (where it points when /boot is a filesystem of its own); a
 * relative syslinux path from the configuration's folder.
 */
export async function findExistingBoot(root: string, loader: "grub" | "syslinux"): Promise<ExistingBoot | null> {
  for (const config of CONFIGS[loader]) {
    const text = await readGuestText(root, config);
    if (text === null) continue;
    for (const named of kernelsNamed(text)) {
      const candidates = named.startsWith("/")
        ? [named, posix.join("/boot", named)]
        : [posix.join(posix.dirname(config), named)];
      for (const kernel of candidates) if (await isKernelFile(root, kernel)) return { loader, config, kernel };
    }
  }
  return null;
}
