/**
 * What rebuilding a guest's initramfs runs: which of the guest's tools, for which kernel, with which arguments.
 * Planned on the mounted guest by the initramfs-modules edit; run later, inside the libguestfs appliance, by
 * rebuild-initramfs.ts (never on the host).
 */

/** The drivers a rebuilt initramfs is asked to hold: the PCI transport, block and SCSI disks, the network. */
export const VIRTIO_DRIVERS = ["virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"] as const;

export type InitramfsTool = "update-initramfs" | "dracut" | "mkinitrd";

/** The guest's initramfs tool, by the programs it ships: Debian/Ubuntu, RHEL 6 and later, CentOS 5. */
export const INITRAMFS_TOOLS: readonly { readonly tool: InitramfsTool; readonly paths: readonly string[] }[] = [
  { tool: "update-initramfs", paths: ["/usr/sbin/update-initramfs", "/sbin/update-initramfs"] },
  // RHEL 6's /sbin/mkinitrd is a wrapper around dracut: dracut is looked for first.
  { tool: "dracut", paths: ["/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"] },
  { tool: "mkinitrd", paths: ["/sbin/mkinitrd", "/usr/sbin/mkinitrd"] },
];

export interface InitramfsRebuildPlan {
  readonly tool: InitramfsTool;
  /** The kernel release the initramfs is for. */
  readonly version: string;
  /** The guest path the tool writes (and the check reads back). */
  readonly initramfs: string;
  /** The command run inside the guest (in the appliance), as arguments. */
  readonly command: readonly string[];
  /**
   * Files virt-customize fills in on every run (a machine ID, random seeds) that were empty or absent before:
   * emptied or removed again afterwards, so clones of a cleaned image do not all share one identity.
   */
  readonly restore: { readonly truncate: readonly string[]; readonly remove: readonly string[] };
}

/**
 * What virt-customize (libguestfs 1.48) writes before running any command: /etc/machine-id when it is empty
 * or absent, and the random seed files of the Fedora, Debian and systemd layouts.
 */
export const APPLIANCE_WRITTEN_FILES = [
  "/etc/machine-id",
  "/var/lib/random-seed",
  "/var/lib/urandom/random-seed",
  "/var/lib/systemd/random-seed",
] as const;

/**
 * A kernel release as it may appear in a command line. It comes from the guest's file names, so anything that
 * a shell would read as more than a word is refused rather than quoted.
 */
const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/;

export function isSafeRelease(version: string): boolean {
  return RELEASE.test(version);
}

/** Where each tool writes the initramfs of a release when the guest has none yet. */
export function defaultInitramfsPath(tool: InitramfsTool, version: string): string {
  if (tool === "update-initramfs") return `/boot/initrd.img-${version}`;
  if (tool === "dracut") return `/boot/initramfs-${version}.img`;
  return `/boot/initrd-${version}.img`;
}

/**
 * The rebuild command. update-initramfs reads the drivers from /etc/initramfs-tools/modules and dracut from
 * /etc/dracut.conf.d (both written by the edit); CentOS 5's mkinitrd has no such file, so they are arguments.
 */
export function rebuildCommand(tool: InitramfsTool, version: string, initramfs: string, exists: boolean): string[] {
  if (!isSafeRelease(version)) throw new Error(`kernel release "${version}" is not a plain word`);
  if (tool === "update-initramfs") return ["update-initramfs", exists ? "-u" : "-c", "-k", version];
  if (tool === "dracut") return ["dracut", "-f", initramfs, version];
  return ["mkinitrd", ...VIRTIO_DRIVERS.map((d) => `--with=${d}`), "-f", initramfs, version];
}

/** The command as one shell line (every argument is a plain word: releases and paths are checked). */
export function shellLine(command: readonly string[]): string {
  for (const arg of command)
    if (!/^[A-Za-z0-9_./=+~-]+$/.test(arg)) throw new Error(`"${arg}" is not a plain shell word`);
  return command.join(" ");
}
