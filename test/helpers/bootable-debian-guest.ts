/**
 * A Debian bookworm guest with what an importer's Linux conversion looks for (virt-v2v's, for one): the
 * distribution's kernel package installed through dpkg (so the package database owns /boot/vmlinuz-VERSION and
 * /lib/modules/VERSION), the initramfs its postinst built, grub's configuration tools (/usr/sbin/grub-mkconfig
 * from grub2-common) with /etc/default/grub and a /boot/grub/grub.cfg naming the kernel, systemd as init, and an
 * fstab naming the root filesystem by UUID.
 *
 * Kept small: the kernel's 4,000 modules (400 MB) are filtered by dpkg down to the storage, network and
 * filesystem drivers a VMware or KVM machine boots from (about 5 MB), so the whole root is about 200 MB.
 * What is not there: a boot loader in the disk's first sectors (grub-install needs a BIOS boot partition the
 * shared disk layout does not have); an importer rewrites the configuration, not the boot sector.
 *
 * Built like the cleaning proofs' guests (test/helpers/debian-guest.ts) and cached beside them.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import {
  DEBIAN_LEAN_DPKGOPTS,
  PARTITION_OFFSET,
  ROOT_UUID,
  cachedGuest,
  debianBaseTar,
  extract,
  hashOf,
  plant,
  readTreeFile,
  type BuiltGuest,
  type DebianBaseRecipe,
  type Plant,
} from "./debian-guest.js";
import { runOk } from "./tools.js";

/**
 * The modules kept, each with every module it needs (modprobe --show-depends on bookworm's 6.1 kernel):
 * virtio block, SCSI, network, console, balloon and RNG for KVM; LSI Logic SCSI (mptspi) and VMXNET3 for
 * VMware; PIIX IDE for older hypervisors; ext4 and the checksums it uses.
 */
export const KEPT_MODULES = [
  "arch/x86/crypto/crc32c-intel.ko",
  "arch/x86/crypto/crct10dif-pclmul.ko",
  "block/t10-pi.ko",
  "crypto/crc32c_generic.ko",
  "crypto/crct10dif_common.ko",
  "crypto/crct10dif_generic.ko",
  // AHCI: the SATA controller VirtualBox and VMware give a Linux guest (the bootable proof boots on it too).
  "drivers/ata/ahci.ko",
  "drivers/ata/ata_piix.ko",
  "drivers/ata/libahci.ko",
  "drivers/ata/libata.ko",
  "drivers/block/virtio_blk.ko",
  "drivers/char/hw_random/virtio-rng.ko",
  "drivers/char/virtio_console.ko",
  "drivers/message/fusion/mptbase.ko",
  "drivers/message/fusion/mptscsih.ko",
  "drivers/message/fusion/mptspi.ko",
  "drivers/net/net_failover.ko",
  "drivers/net/virtio_net.ko",
  "drivers/net/vmxnet3/vmxnet3.ko",
  "drivers/scsi/scsi_common.ko",
  "drivers/scsi/scsi_mod.ko",
  "drivers/scsi/scsi_transport_spi.ko",
  "drivers/scsi/sd_mod.ko",
  "drivers/scsi/virtio_scsi.ko",
  "drivers/virtio/virtio.ko",
  "drivers/virtio/virtio_balloon.ko",
  "drivers/virtio/virtio_pci.ko",
  "drivers/virtio/virtio_pci_legacy_dev.ko",
  "drivers/virtio/virtio_pci_modern_dev.ko",
  "drivers/virtio/virtio_ring.ko",
  "fs/ext4/ext4.ko",
  "fs/jbd2/jbd2.ko",
  "fs/mbcache.ko",
  "lib/crc-t10dif.ko",
  "lib/crc16.ko",
  "lib/crc64-rocksoft.ko",
  "lib/crc64.ko",
  "net/core/failover.ko",
];

/**
 * A minbase bookworm root with a kernel: `include` installed without recommends (they would bring firmware and
 * apparmor, nothing a conversion looks at), and of the kernel's modules only `modules` (paths under kernel/).
 */
export function kernelGuestRecipe(
  include: readonly string[],
  modules: readonly string[],
  customize?: readonly string[],
): DebianBaseRecipe {
  return {
    suite: "bookworm",
    variant: "minbase",
    include,
    aptopts: ['APT::Install-Recommends "false"'],
    // dpkg applies the last filter that matches a path: every module is excluded, then the kept ones included.
    dpkgopts: [
      ...DEBIAN_LEAN_DPKGOPTS,
      "path-exclude=/lib/modules/*/kernel/*",
      ...modules.map((m) => `path-include=/lib/modules/*/kernel/${m}`),
    ],
    ...(customize ? { customize } : {}),
  };
}

// zstd is initramfs-tools' recommended compressor: without it the initramfs is gzipped, which takes virt-v2v
// about 10 s longer to rebuild under TCG.
const BOOTABLE_BASE = kernelGuestRecipe(
  ["linux-image-amd64", "grub2-common", "systemd-sysv", "e2fsprogs", "zstd"],
  KEPT_MODULES,
);

/** A file planted into the guest so a reader of the imported disk can tell it is this guest's filesystem. */
export const BOOTABLE_GUEST_MARKER = {
  path: "/srv/chromogenic/marker.txt",
  content: "planted by chromogenic's bootable Debian test guest\n",
} as const;

export const BOOTABLE_GUEST_HOSTNAME = "chromogenic-bootable";

const HELPER_VERSION = 1;

/** The grub.cfg update-grub would write for one kernel (it cannot probe devices in a chroot, so it is written here). */
function grubConfig(version: string): string {
  return [
    "set default=0",
    "set timeout=5",
    "insmod part_gpt",
    "insmod ext2",
    `search --no-floppy --fs-uuid --set=root ${ROOT_UUID}`,
    "menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class os {",
    `\tlinux\t/boot/vmlinuz-${version} root=UUID=${ROOT_UUID} ro quiet`,
    `\tinitrd\t/boot/initrd.img-${version}`,
    "}",
    "",
  ].join("\n");
}

/** The one kernel version under /boot of an extracted root. */
export async function kernelVersionOf(tree: string): Promise<string> {
  const versions = (await readdir(join(tree, "boot")))
    .filter((n) => n.startsWith("vmlinuz-"))
    .map((n) => n.slice("vmlinuz-".length));
  if (versions.length !== 1) throw new Error(`bootable guest: expected one kernel in /boot, found ${versions.length}`);
  return versions[0]!;
}

/**
 * The bootable Debian guest as a cached raw disk (512 MiB, GPT, ext4 root). First build: about 40 s of
 * mmdebstrap plus a few seconds for the disk.
 */
export async function bootableDebianGuest(): Promise<BuiltGuest> {
  const started = Date.now();
  const base = await debianBaseTar(BOOTABLE_BASE, "debian-bootable-base");
  const fixedPlants: Plant[] = [
    { op: "file", path: "/etc/fstab", content: `UUID=${ROOT_UUID} / ext4 errors=remount-ro 0 1\n` },
    { op: "file", path: "/etc/hostname", content: `${BOOTABLE_GUEST_HOSTNAME}\n` },
    { op: "file", path: BOOTABLE_GUEST_MARKER.path, content: BOOTABLE_GUEST_MARKER.content },
  ];
  const key = hashOf({ base: BOOTABLE_BASE, fixedPlants, grub: grubConfig("VERSION"), version: HELPER_VERSION });
  const name = `debian-bootable-${key}`;
  return cachedGuest(name, started, async (tree) => {
    await extract(base.tar, tree);
    const version = await kernelVersionOf(tree);
    const plants: Plant[] = [
      ...fixedPlants,
      // What grub-pc's postinst installs from grub2-common's template.
      { op: "file", path: "/etc/default/grub", content: await readTreeFile(tree, "/usr/share/grub/default/grub") },
      { op: "file", path: "/boot/grub/grub.cfg", content: grubConfig(version), mode: 0o444 },
    ];
    await plant(tree, plants);
    return { expectations: [], planted: plants.map((p) => p.path), sizeMiB: 512 };
  });
}

/** The guest's root partition alone, copied into `into`: a bare ext4 filesystem (what a Xen or Eucalyptus image is). */
export async function bareRootOf(guestRaw: string, into: string): Promise<void> {
  await runOk("dd", [
    `if=${guestRaw}`,
    `of=${into}`,
    "bs=1M",
    `skip=${PARTITION_OFFSET}`,
    "iflag=skip_bytes",
    "count=512",
    "conv=sparse",
    "status=none",
  ]);
}
