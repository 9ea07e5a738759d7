/**
 * Xen paravirtual guests for the Xen → KVM proofs (issue 16): real Debian 12 roots built by mmdebstrap and
 * laid out the way Eucalyptus, older AWS and XenServer/XCP hand their guests to the hypervisor.
 *
 * What makes each one a Xen guest, and what a conversion to KVM must change:
 * - fstab names the root `/dev/xvda1`, the name Xen's block frontend gives the first disk (KVM calls it vda);
 * - the console is the Xen one: a getty on `hvc0` (serial-getty@hvc0.service enabled by its symlink in
 *   getty.target.wants, as `systemctl enable` makes it) and `console=hvc0` on the kernel command line;
 * - there is no boot code anywhere and no GRUB 2: the hypervisor starts the kernel itself, either from files
 *   given beside the disk (Eucalyptus EKI/ERI, AWS AKI/ARI: the "bare" layout, a filesystem with no partition
 *   table whose /boot is empty) or from the guest's /boot as pygrub finds it through a grub-legacy
 *   /boot/grub/menu.lst (the "pygrub" layout, an MBR disk with one partition from 1 MiB);
 * - optionally an initramfs holding only the Xen block and network drivers (initramfs-tools' MODULES=list with
 *   xen-blkfront and xen-netfront): it finds no disk on virtio, IDE or SATA until it is rebuilt.
 *
 * All variants share one mmdebstrap base (cached like the cleaning and bootable guests, see debian-guest.ts):
 * the kernel's modules are filtered by dpkg down to the Xen, virtio, IDE/SATA and filesystem drivers these
 * tests use, and a customize hook builds the Xen-only initramfs inside the chroot beside the generic one (this
 * is the test's own guest build; the product never runs a guest program on the host). Each variant's disk is
 * a cached raw file: use it read-only (copy, convert, or boot it with snapshot=on).
 */
import { copyFile, readdir, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { KEPT_MODULES, kernelGuestRecipe, kernelVersionOf } from "./bootable-debian-guest.js";
import {
  ROOT_UUID,
  cachedGuest,
  debianBaseTar,
  extract,
  guestCacheDir,
  hashOf,
  plant,
  type DiskLayout,
  type Plant,
} from "./debian-guest.js";
import { runOk } from "./tools.js";

/** The modules the Xen guests add to the bootable guest's: Xen frontends, AHCI for SATA boots, XFS. */
const XEN_EXTRA_MODULES = [
  "drivers/ata/ahci.ko",
  "drivers/ata/libahci.ko",
  "drivers/block/xen-blkfront.ko",
  "drivers/net/xen-netfront.ko",
  "fs/xfs/xfs.ko",
  "lib/libcrc32c.ko",
];

/**
 * What the Xen-only initramfs lists (MODULES=list): the Xen block and network frontends, and the root
 * filesystems' modules, without which the guest could not boot on Xen either.
 */
export const XEN_ONLY_INITRAMFS_MODULES = ["xen-blkfront", "xen-netfront", "ext4", "xfs"] as const;

/** Where the customize hook leaves the Xen-only initramfs, beside the generic one, and its configuration. */
const XEN_ONLY_SUFFIX = ".xen-only";
const XEN_ONLY_CONF = "/etc/initramfs-tools-xen-only";

/**
 * Builds, for every kernel of the root, /boot/initrd.img-VERSION.xen-only from a copy of initramfs-tools'
 * configuration switched to MODULES=list with the Xen-only modules (mkinitramfs -d takes that directory).
 */
const XEN_ONLY_INITRAMFS_HOOK = [
  "set -e",
  `cp -a "$1/etc/initramfs-tools" "$1${XEN_ONLY_CONF}"`,
  `sed -i 's/^MODULES=.*/MODULES=list/' "$1${XEN_ONLY_CONF}/initramfs.conf"`,
  `printf '%s\\n' ${XEN_ONLY_INITRAMFS_MODULES.join(" ")} >> "$1${XEN_ONLY_CONF}/modules"`,
  `for v in $(ls "$1/lib/modules"); do chroot "$1" mkinitramfs -d ${XEN_ONLY_CONF} -o /boot/initrd.img-$v${XEN_ONLY_SUFFIX} $v; done`,
].join("\n");

// zstd: initramfs-tools' preferred compressor. Not xfsprogs: it brings Python and ICU (70 MB) for nothing a
// boot needs (fsck.xfs does nothing; systemd skips the check of an XFS root without it).
const XEN_BASE = kernelGuestRecipe(
  ["linux-image-amd64", "systemd-sysv", "e2fsprogs", "zstd"],
  [...KEPT_MODULES, ...XEN_EXTRA_MODULES],
  [XEN_ONLY_INITRAMFS_HOOK],
);

/**
 * What a btrfs or LVM root needs beyond the other variants: btrfs with what it depends on and the checksums
 * it asks for by name, and device-mapper for LVM.
 */
const STORAGE_MODULES = [
  "crypto/blake2b_generic.ko",
  "crypto/xor.ko",
  "crypto/xxhash_generic.ko",
  "drivers/md/dm-mod.ko",
  "fs/btrfs/btrfs.ko",
  "lib/raid6/raid6_pq.ko",
  "lib/zstd/zstd_compress.ko",
];

/**
 * The base of the btrfs and LVM variants: lvm2 brings its initramfs hook (the tools and the udev rules that
 * activate every complete volume group at boot). A base of its own, so the other variants' cached disks stay.
 */
const XEN_STORAGE_BASE = kernelGuestRecipe(
  ["linux-image-amd64", "systemd-sysv", "e2fsprogs", "zstd", "lvm2"],
  [...KEPT_MODULES, ...XEN_EXTRA_MODULES, ...STORAGE_MODULES],
  [XEN_ONLY_INITRAMFS_HOOK],
);

/** The volume group and logical volume of the LVM layout (named like nothing a host would have). */
export const XEN_LVM_NAMES = { volumeGroup: "chromoxenvg", logicalVolume: "root" } as const;

export const XEN_GUEST_HOSTNAME = "chromogenic-xen";
/** The root device every Xen guest's fstab and kernel command line name. */
export const XEN_ROOT_DEVICE = "/dev/xvda1";

export interface XenGuestOptions {
  /**
   * "bare": the root filesystem alone, kernel and initramfs outside; "pygrub": MBR disk, menu.lst, /boot;
   * "lvm": pygrub's, the root in a logical volume (XEN_LVM_NAMES) on the MBR partition.
   */
  readonly layout: "bare" | "pygrub" | "lvm";
  readonly fs: "ext4" | "xfs" | "btrfs";
  /** "generic": initramfs-tools' default MODULES=most; "xen-only": MODULES=list, Xen frontends only. */
  readonly initramfs: "generic" | "xen-only";
}

export interface XenGuest {
  readonly name: string;
  readonly options: XenGuestOptions;
  /** The cached raw disk (a bare filesystem or an MBR disk): never change it. */
  readonly disk: string;
  /** The kernel and initramfs given beside the disk (EKI/ERI), for the bare layout only. */
  readonly kernel?: string;
  readonly initrd?: string;
  readonly kernelVersion: string;
  /** The root filesystem's UUID (fstab does not name it: a conversion must find it). */
  readonly rootUuid: string;
  /** A file only this variant has, with this content: the identity check for a converted disk. */
  readonly marker: { readonly path: string; readonly content: string };
  /** Seconds the build took (0 when it came from the cache). */
  readonly buildSeconds: number;
}

const HELPER_VERSION = 1;

const MARKER_PATH = "/srv/chromogenic/xen-guest.txt";

function markerContent(o: XenGuestOptions): string {
  return `planted by chromogenic's Xen test guest: ${o.layout} ${o.fs}, ${o.initramfs} initramfs\n`;
}

/** The root device fstab and the kernel command line name: Xen's first disk, or the logical volume. */
function rootDevice(o: XenGuestOptions): string {
  const { volumeGroup, logicalVolume } = XEN_LVM_NAMES;
  return o.layout === "lvm" ? `/dev/mapper/${volumeGroup}-${logicalVolume}` : XEN_ROOT_DEVICE;
}

/** pygrub's menu.lst for one kernel (grub-legacy syntax: partition 0 of disk 0 is the root). */
function menuLst(version: string, root: string): string {
  return [
    "default 0",
    "timeout 3",
    "",
    `title Debian GNU/Linux 12, kernel ${version} (Xen)`,
    "\troot (hd0,0)",
    `\tkernel /boot/vmlinuz-${version} root=${root} ro console=hvc0`,
    `\tinitrd /boot/initrd.img-${version}`,
    "",
  ].join("\n");
}

/** What every variant plants: the Xen names for the root and the console, the hostname, the marker. */
function xenPlants(o: XenGuestOptions): Plant[] {
  const root = rootDevice(o);
  const fstab =
    o.fs === "ext4" ? `${root} / ext4 defaults,errors=remount-ro 0 1\n` : `${root} / ${o.fs} defaults 0 0\n`;
  return [
    { op: "file", path: "/etc/fstab", content: fstab },
    { op: "file", path: "/etc/hostname", content: `${XEN_GUEST_HOSTNAME}\n` },
    {
      op: "symlink",
      path: "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
      target: "/lib/systemd/system/serial-getty@.service",
    },
    { op: "file", path: MARKER_PATH, content: markerContent(o) },
    { op: "remove", path: XEN_ONLY_CONF },
    ...(o.initramfs === "xen-only"
      ? ([
          // The guest's own configuration says what its initramfs holds: a rebuild in the guest must change it.
          { op: "replace-line", path: "/etc/initramfs-tools/initramfs.conf", from: "MODULES=most", to: "MODULES=list" },
          { op: "append", path: "/etc/initramfs-tools/modules", content: XEN_ONLY_INITRAMFS_MODULES.join("\n") + "\n" },
        ] satisfies Plant[])
      : []),
  ];
}

/** `from` copied to `to` in the cache, appearing whole or not at all. */
async function cacheCopy(from: string, to: string): Promise<void> {
  await copyFile(from, `${to}.tmp`);
  await rename(`${to}.tmp`, to);
}

/**
 * Fails the build if a kept module needs one the dpkg filter left out (each module names its dependencies in
 * its modinfo): a guest missing, say, libahci would fail to boot for a reason no test is about.
 */
async function checkModuleDependencies(tree: string, version: string): Promise<void> {
  const name = (m: string) => m.replaceAll("-", "_");
  const modules = (await runOk("find", [join(tree, "lib/modules", version, "kernel"), "-name", "*.ko"]))
    .split("\n")
    .filter(Boolean);
  const present = new Set(modules.map((m) => name(basename(m, ".ko"))));
  const needed = (await runOk("modinfo", ["-F", "depends", ...modules])).split(/[,\n]/).filter(Boolean);
  const missing = [...new Set(needed.map(name))].filter((m) => !present.has(m));
  if (missing.length) throw new Error(`xen guest: kept modules need modules filtered out: ${missing.join(", ")}`);
}

/**
 * A Xen guest as a cached disk (512 MiB filesystem), plus its kernel and initramfs for the bare layout.
 * First build: about a minute of mmdebstrap, once for all variants, then a few seconds per variant.
 */
export async function xenGuest(options: XenGuestOptions): Promise<XenGuest> {
  const started = Date.now();
  const storage = options.fs === "btrfs" || options.layout === "lvm";
  const recipe = storage ? XEN_STORAGE_BASE : XEN_BASE;
  const base = await debianBaseTar(recipe, storage ? "debian-xen-storage-base" : "debian-xen-base");
  const plants = xenPlants(options);
  const menu = menuLst("VERSION", rootDevice(options));
  const key = hashOf({ base: recipe, options, plants, menu, version: HELPER_VERSION });
  const name = `debian-xen-${options.layout}-${options.fs}-${options.initramfs}-${key}`;
  const kernelFile = join(guestCacheDir(), `${name}.vmlinuz`);
  const initrdFile = join(guestCacheDir(), `${name}.initrd`);
  const layout: DiskLayout =
    options.layout === "lvm"
      ? { table: "lvm", fs: options.fs, lvm: XEN_LVM_NAMES }
      : { table: options.layout === "bare" ? "none" : "mbr", fs: options.fs };
  const built = await cachedGuest(name, started, async (tree) => {
    await extract(base.tar, tree);
    const version = await kernelVersionOf(tree);
    await checkModuleDependencies(tree, version);
    const boot = join(tree, "boot");
    const initrd = join(boot, `initrd.img-${version}`);
    const xenOnly = `${initrd}${XEN_ONLY_SUFFIX}`;
    if (options.initramfs === "xen-only") await rename(xenOnly, initrd);
    else await rm(xenOnly);
    await plant(tree, plants);
    if (options.layout === "bare") {
      // EKI/ERI: the kernel and initramfs live outside the guest; its /boot and the links at / are empty.
      await cacheCopy(join(boot, `vmlinuz-${version}`), kernelFile);
      await cacheCopy(initrd, initrdFile);
      for (const n of await readdir(boot)) await rm(join(boot, n), { recursive: true });
      for (const link of ["vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"])
        await rm(join(tree, link), { force: true });
    } else {
      await plant(tree, [{ op: "file", path: "/boot/grub/menu.lst", content: menuLst(version, rootDevice(options)) }]);
    }
    return { expectations: [], planted: plants.map((p) => p.path), sizeMiB: 512, layout, details: { version } };
  });
  return {
    name,
    options,
    disk: built.raw,
    ...(options.layout === "bare" ? { kernel: kernelFile, initrd: initrdFile } : {}),
    kernelVersion: built.details.version!,
    rootUuid: ROOT_UUID,
    marker: { path: MARKER_PATH, content: markerContent(options) },
    buildSeconds: built.buildSeconds,
  };
}

/** (a) Eucalyptus' usual image: a bare ext4 root, the kernel and initramfs given beside it (EKI/ERI). */
export const xenBareExt4Guest = () => xenGuest({ layout: "bare", fs: "ext4", initramfs: "generic" });

/** (b) XenServer/XCP's and AWS's pygrub image: an MBR disk with only a menu.lst, the kernel in /boot. */
export const xenPygrubGuest = () => xenGuest({ layout: "pygrub", fs: "ext4", initramfs: "generic" });

/** (c) The bare layout with an XFS root (RHEL 7 and later made XFS the default root filesystem). */
export const xenBareXfsGuest = () => xenGuest({ layout: "bare", fs: "xfs", initramfs: "generic" });

/**
 * (d) The bare layout whose initramfs (the ERI given beside it) holds only the Xen frontends: the guest cannot
 * find its root on virtio until the initramfs is rebuilt with virtio drivers; its /etc/initramfs-tools says
 * MODULES=list, so a rebuild must also add them to the list.
 */
export const xenOnlyInitramfsGuest = () => xenGuest({ layout: "bare", fs: "ext4", initramfs: "xen-only" });

/** (e) The bare layout with a btrfs root (SUSE's default; the kernel and initramfs given beside it). */
export const xenBareBtrfsGuest = () => xenGuest({ layout: "bare", fs: "btrfs", initramfs: "generic" });

/** (f) pygrub's layout with the root in LVM: an MBR partition holding a volume group, ext4 in its root volume. */
export const xenLvmGuest = () => xenGuest({ layout: "lvm", fs: "ext4", initramfs: "generic" });
