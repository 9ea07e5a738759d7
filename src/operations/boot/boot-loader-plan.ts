/**
 * What the boot loader will be, decided on the mounted guest: which filesystems are the root and /boot (and
 * their UUIDs and GRUB modules), the kernel and initramfs, the paths GRUB reads them by, the grub.cfg text.
 * The same on the input mounted read-only (a dry run) and on the new disk: a block copy keeps the UUIDs.
 */
import { readGuestText } from "../../guest/guest-files.js";
import type { InstalledKernel } from "../../guest/inspect/boot-files.js";
import type { MountedGuest } from "../../guest/mount/mount-guest.js";
import { NotBootableError } from "./boot-errors.js";
import { grubFilesystemModule, type CoreImageRequest } from "./grub-core-image.js";
import { defaultKernelArguments, grubConfig } from "./grub-config.js";
import { chooseKernel } from "./kernel-choice.js";
import type { DiskLayout, BootLoaderKind } from "./disk-layout.js";
import { extlinuxConfig } from "./extlinux.js";
import type { GuestEditResult } from "./guest-edits.js";

export interface FilesystemFacts {
  readonly device: string;
  readonly type: string;
  readonly uuid: string;
}

export interface BootLoaderPlan {
  readonly loader: BootLoaderKind;
  readonly root: FilesystemFacts;
  /** The filesystem holding /boot: the root's, or its own; `partition` is its number when it is one. */
  readonly boot: FilesystemFacts & { readonly separate: boolean; readonly lvm: boolean; readonly partition?: number };
  readonly kernel: InstalledKernel;
  readonly kernelArguments: readonly string[];
  /** The guest's grub folder ("/boot/grub"), and the core image that finds it (GRUB only). */
  readonly grubDir: string;
  readonly core: CoreImageRequest;
  /** The loader's configuration file as the guest sees it, and its text. */
  readonly configPath: string;
  readonly config: string;
  readonly warnings: readonly string[];
}

function facts(
  mounted: MountedGuest,
  guestPath: string,
): (FilesystemFacts & { lvm: boolean; partition?: number }) | null {
  const mount = mounted.mounts.find((m) => m.guestPath === guestPath);
  if (!mount) return null;
  const device = mounted.devices.find((d) => d.device === mount.device);
  const uuid = device?.filesystem?.uuid;
  if (!uuid)
    throw new NotBootableError(`the guest's ${guestPath} filesystem (${mount.type}) has no UUID to be found by`);
  const partition = device.partition?.number;
  return {
    device: mount.device,
    type: mount.type,
    uuid,
    lvm: device.logicalVolume !== undefined,
    ...(partition !== undefined ? { partition } : {}),
  };
}

/** The guest's name for a menu: os-release's PRETTY_NAME. */
async function guestTitle(root: string): Promise<string> {
  const text = (await readGuestText(root, "/etc/os-release")) ?? (await readGuestText(root, "/usr/lib/os-release"));
  const m = text && /^PRETTY_NAME=(["']?)(.*)\1\s*$/m.exec(text);
  const name = m?.[2]?.replace(/[^\w .,()/+-]/g, "").trim();
  return name || "Linux";
}

export async function planBootLoader(
  mounted: MountedGuest,
  layout: Pick<DiskLayout, "table" | "loader">,
  edits: GuestEditResult | void,
): Promise<BootLoaderPlan> {
  const { table, loader } = layout;
  const root = facts(mounted, "/");
  if (!root) throw new NotBootableError("the guest's root filesystem is not mounted");
  const ownBoot = facts(mounted, "/boot");
  const boot = { ...(ownBoot ?? root), separate: ownBoot !== null };
  const filesystem = grubFilesystemModule(boot.type);
  if (!filesystem) throw new NotBootableError(`the guest's /boot is on ${boot.type}, which GRUB cannot boot from here`);
  if (loader === "extlinux" && (!boot.type.startsWith("ext") || boot.lvm || !boot.partition || boot.partition > 4))
    throw new NotBootableError(
      "GRUB's core image does not fit before the disk's first partition, and extlinux (which needs no room " +
        `there) boots only from ext2/3/4 on a primary partition: the guest's /boot is ${boot.type}` +
        (boot.lvm ? " on LVM" : boot.partition ? ` on partition ${boot.partition}` : ""),
    );
  const kernel = edits?.kernel ?? (await chooseKernel(mounted.root));
  if (!kernel)
    throw new NotBootableError("the guest has no kernel in /boot (vmlinuz-VERSION) to boot: give it one first");
  const warnings: string[] = [];
  if (!kernel.initramfs)
    warnings.push(`kernel ${kernel.version} has no initramfs in /boot: it boots only if its disk drivers are built in`);
  if (boot.type === "btrfs")
    warnings.push("the guest's /boot is on btrfs: GRUB reads it from the top-level subvolume, not a default one");
  // GRUB names files inside the boot filesystem: /boot/… when /boot is the root's folder, /… when it has its own.
  const inBoot = (guestPath: string) => (boot.separate ? guestPath.replace(/^\/boot(?=\/)/, "") : guestPath);
  const kernelArguments = [...defaultKernelArguments(root.uuid), ...(edits?.kernelArguments ?? [])];
  const title = await guestTitle(mounted.root);
  const bootFiles = { kernel: inBoot(kernel.kernel), initramfs: kernel.initramfs && inBoot(kernel.initramfs) };
  const config =
    loader === "grub"
      ? grubConfig({ title, bootFilesystemUuid: boot.uuid, ...bootFiles, kernelArguments })
      : extlinuxConfig({ title, ...bootFiles, kernelArguments });
  return {
    loader,
    root,
    boot,
    kernel,
    kernelArguments,
    grubDir: "/boot/grub",
    core: { table, filesystem, filesystemUuid: boot.uuid, prefix: inBoot("/boot/grub"), lvm: boot.lvm },
    configPath: loader === "grub" ? "/boot/grub/grub.cfg" : "/boot/extlinux/extlinux.conf",
    config,
    warnings,
  };
}
