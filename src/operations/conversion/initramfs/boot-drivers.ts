/**
 * Which disk drivers a kernel and its initramfs give the guest at boot: a module file inside the initramfs, or
 * built into the kernel (its modules.builtin list, or its build configuration).
 */

export type DriverPresence = "module" | "built-in" | "missing" | "unknown";

/**
 * The drivers reported, by module name, with the configuration symbol that builds each in. A virtio disk
 * needs virtio_blk and the PCI transport virtio_pci; the rest tell the reader what else the initramfs holds
 * (SATA/IDE for VirtualBox and VMware, Xen's front end it came with).
 */
export const BOOT_DRIVERS: Readonly<Record<string, string>> = {
  virtio_blk: "CONFIG_VIRTIO_BLK",
  virtio_pci: "CONFIG_VIRTIO_PCI",
  virtio: "CONFIG_VIRTIO",
  virtio_ring: "CONFIG_VIRTIO",
  virtio_scsi: "CONFIG_SCSI_VIRTIO",
  ahci: "CONFIG_SATA_AHCI",
  ata_piix: "CONFIG_ATA_PIIX",
  sd_mod: "CONFIG_BLK_DEV_SD",
  xen_blkfront: "CONFIG_XEN_BLKDEV_FRONTEND",
};

/** What a virtio disk cannot boot without. */
export const VIRTIO_BOOT_DRIVERS = ["virtio_blk", "virtio_pci"] as const;

/** The module a path names ("lib/modules/V/kernel/drivers/block/virtio_blk.ko.zst" → "virtio_blk"), or null. */
export function moduleName(path: string): string | null {
  const m = /(?:^|\/)([^/]+)\.ko(?:\.gz|\.xz|\.zst)?$/.exec(path);
  return m ? m[1]!.replace(/-/g, "_") : null;
}

/** The modules a modules.builtin file lists (one module path per line). */
export function parseModulesBuiltin(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const name = moduleName(line.trim());
    if (name) out.add(name);
  }
  return out;
}

/** The drivers a kernel's build configuration (/boot/config-V) builds in (`=y`). */
export function builtinFromConfig(config: string): Set<string> {
  const yes = new Set<string>();
  for (const m of config.matchAll(/^(CONFIG_[A-Z0-9_]+)=y\s*$/gm)) yes.add(m[1]!);
  const out = new Set<string>();
  for (const [driver, symbol] of Object.entries(BOOT_DRIVERS)) if (yes.has(symbol)) out.add(driver);
  return out;
}

/**
 * Each boot driver's presence: a module in the initramfs, else built in when `builtin` (null: unknown, no list
 * and no configuration found) names it.
 */
export function driverPresence(
  modules: ReadonlySet<string>,
  builtin: ReadonlySet<string> | null,
): Record<string, DriverPresence> {
  const out: Record<string, DriverPresence> = {};
  for (const driver of Object.keys(BOOT_DRIVERS))
    out[driver] = modules.has(driver) ? "module" : builtin?.has(driver) ? "built-in" : builtin ? "missing" : "unknown";
  return out;
}
