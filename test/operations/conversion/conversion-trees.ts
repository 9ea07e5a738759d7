/**
 * Guest trees and boot files for the Xen → KVM edits' tests, in plain folders (no image, no mount): a Debian
 * 12 Xen-style guest on systemd, the CentOS 5/6 and upstart-era files (test/helpers/xen-guest-files.ts) with
 * the few files that tell their init apart, kernel images carrying a real setup header, and initramfs images
 * made by the real cpio and compressors.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { plant, type Plant } from "../../helpers/debian-guest.js";
import { scratch } from "../../helpers/tools.js";
import { plantXenGuestFiles, type XenEra } from "../../helpers/xen-guest-files.js";

export const ROOT_UUID = "3f1c2b9e-8d4a-4e6f-9a7b-1c2d3e4f5a6b";
export const DATA_UUID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
export const DEBIAN_KERNEL = "6.1.0-18-amd64";

const own = () => ({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });

/** A file planted with the test's own owner (so no root is needed) and a mode. */
export function file(path: string, content: string, mode = 0o644): Plant {
  return { op: "file", path, content, mode, ...own() };
}

/**
 * The first 16 KiB of an x86 kernel image: the boot sector signature, the "HdrS" setup header of boot
 * protocol 2.15, and the version string where the header's kernel_version field (0x20E) points.
 */
export function kernelImage(versionString: string, options: { protocol?: number; pointer?: number } = {}): Buffer {
  const image = Buffer.alloc(16 * 1024);
  image[0x1f1] = 27; // setup_sects: a modern kernel's setup is 27 sectors
  image.writeUInt16LE(0xaa55, 0x1fe);
  image.write("HdrS", 0x202, "latin1");
  image.writeUInt16LE(options.protocol ?? 0x020f, 0x206);
  const pointer = options.pointer ?? 0x3000;
  image.writeUInt16LE(pointer, 0x20e);
  image[0x211] = 0x01; // loadflags: LOADED_HIGH, what makes a bzImage of a zImage
  if (pointer !== 0 && pointer + 0x200 < image.length) image.write(`${versionString}\0`, pointer + 0x200, "latin1");
  return image;
}

export const debianVersionString = (release: string) =>
  `${release} (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)`;

export type Compressor = "gzip" | "xz" | "zstd" | "lz4" | "bzip2";

const COMPRESS: Readonly<Record<Compressor, readonly string[]>> = {
  gzip: ["gzip", "-9", "-n"],
  // The kernel's xz decoder wants CRC32 checks, as its documentation asks of initramfs images.
  xz: ["xz", "--check=crc32", "-z"],
  zstd: ["zstd", "-q", "-19"],
  // The kernel reads lz4's legacy format.
  lz4: ["lz4", "-l", "-q"],
  bzip2: ["bzip2", "-9"],
};

function tool(command: readonly string[], input?: Buffer, cwd?: string): Buffer {
  const r = spawnSync(command[0]!, command.slice(1), { input, cwd, maxBuffer: 256 * 2 ** 20 });
  if (r.error) throw new Error(`${command[0]} is needed by this test: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command.join(" ")} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

export function compress(data: Buffer, with_: Compressor): Buffer {
  return tool(COMPRESS[with_], data);
}

/** A cpio newc archive of `files` (path → content), written by the real cpio from a folder. */
export async function cpioArchive(files: Readonly<Record<string, string>>): Promise<Buffer> {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-cpio-"));
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    const list = tool(["sh", "-c", "find . | LC_ALL=C sort"], undefined, dir);
    return tool(["cpio", "--quiet", "-o", "-H", "newc"], list, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The names `cpio -t` lists in an uncompressed archive (the independent reader the scanner is checked against). */
export function cpioNames(archive: Buffer): string[] {
  return tool(["cpio", "--quiet", "-t"], archive)
    .toString("latin1")
    .split("\n")
    .filter((n) => n)
    .map((n) => n.replace(/^\.\//, ""));
}

const MODULES = `usr/lib/modules/${DEBIAN_KERNEL}`;
export const VIRTIO_INITRAMFS_FILES = {
  [`${MODULES}/kernel/drivers/block/virtio_blk.ko`]: "virtio_blk module\n",
  [`${MODULES}/kernel/drivers/virtio/virtio_pci.ko`]: "virtio_pci module\n",
  [`${MODULES}/kernel/drivers/virtio/virtio.ko`]: "virtio module\n",
  [`${MODULES}/kernel/drivers/virtio/virtio_ring.ko`]: "virtio_ring module\n",
  [`${MODULES}/kernel/drivers/ata/ata_piix.ko`]: "ata_piix module\n",
  [`${MODULES}/kernel/drivers/block/xen-blkfront.ko`]: "xen-blkfront module\n",
  [`${MODULES}/modules.builtin`]: "kernel/drivers/scsi/sd_mod.ko\nkernel/fs/ext4/ext4.ko\n",
  init: "#!/bin/sh\n",
} as const;
/** What initramfs-tools builds with MODULES=list and only Xen's front ends listed. */
export const XEN_ONLY_INITRAMFS_FILES = {
  [`${MODULES}/kernel/drivers/block/xen-blkfront.ko`]: "xen-blkfront module\n",
  [`${MODULES}/kernel/drivers/net/xen-netfront.ko`]: "xen-netfront module\n",
  [`${MODULES}/modules.builtin`]: "kernel/drivers/scsi/sd_mod.ko\n",
  init: "#!/bin/sh\n",
} as const;

/** Debian's layout: an uncompressed early microcode archive, then the main archive compressed. */
export async function debianInitramfs(
  files: Readonly<Record<string, string>>,
  compressor: Compressor = "zstd",
): Promise<Buffer> {
  const early = await cpioArchive({ "kernel/x86/microcode/GenuineIntel.bin": "microcode\n" });
  return Buffer.concat([early, compress(await cpioArchive(files), compressor)]);
}

/**
 * A Debian 12 guest made for Xen: root and swap on /dev/xvda*, a getty enabled on hvc0, the Xen console on
 * the kernel command line, xen-blkfront listed for the initramfs; systemd as init, its serial getty unit
 * present. Its kernel and initramfs are added by the caller (they are binary).
 */
export function debianXenPlants(): Plant[] {
  return [
    file(
      "/etc/os-release",
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    ),
    file(
      "/etc/fstab",
      [
        "# <file system> <mount point> <type> <options> <dump> <pass>",
        "/dev/xvda1\t/\text4\terrors=remount-ro\t0\t1",
        "/dev/xvda2\t/srv\text4\tdefaults\t0\t2",
        "/dev/xvda3\tnone\tswap\tsw\t0\t0",
        "xenfs\t/proc/xen\txenfs\tdefaults\t0\t0",
        "tmpfs\t/tmp\ttmpfs\tdefaults\t0\t0",
        "",
      ].join("\n"),
    ),
    file("/lib/systemd/systemd", "stub: systemd\n", 0o755),
    { op: "symlink", path: "/sbin/init", target: "/lib/systemd/systemd" },
    file("/lib/systemd/system/serial-getty@.service", "[Unit]\nDescription=Serial Getty on %I\n"),
    file("/lib/systemd/system/getty@.service", "[Unit]\nDescription=Getty on %I\n"),
    {
      op: "symlink",
      path: "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
      target: "/lib/systemd/system/serial-getty@.service",
    },
    {
      op: "symlink",
      path: "/etc/systemd/system/getty.target.wants/getty@tty1.service",
      target: "/lib/systemd/system/getty@.service",
    },
    file(
      "/etc/default/grub",
      [
        "GRUB_DEFAULT=0",
        "GRUB_TIMEOUT=5",
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"',
        'GRUB_CMDLINE_LINUX="console=hvc0 root=/dev/xvda1"',
        "",
      ].join("\n"),
    ),
    file(
      "/boot/grub/grub.cfg",
      [
        "menuentry 'Debian GNU/Linux' {",
        `\tlinux\t/boot/vmlinuz-${DEBIAN_KERNEL} root=/dev/xvda1 ro console=hvc0 quiet`,
        `\tinitrd\t/boot/initrd.img-${DEBIAN_KERNEL}`,
        "}",
        "",
      ].join("\n"),
    ),
    file("/etc/initramfs-tools/modules", "xen-blkfront\nxen-netfront\n"),
    // What the initramfs rebuild needs: the guest's tool and the kernel's modules.
    file("/usr/sbin/update-initramfs", "stub: update-initramfs\n", 0o755),
    file(`/lib/modules/${DEBIAN_KERNEL}/modules.order`, "kernel/drivers/block/xen-blkfront.ko\n"),
    file(`/boot/config-${DEBIAN_KERNEL}`, "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n"),
    file("/etc/modprobe.d/xen.conf", "# Xen front ends\nalias eth0 xen-netfront\noptions loop max_loop=8\n"),
    file("/etc/rc.local", "#!/bin/sh -e\n/usr/local/bin/site-start\nexit 0\n", 0o755),
  ];
}

/** A guest root in a scratch folder, planted. */
export async function plantedRoot(t: Parameters<typeof scratch>[0], plants: readonly Plant[]): Promise<string> {
  const root = join(await scratch(t, "chromo-xen-"), "root");
  await mkdir(root);
  await plant(root, plants);
  return root;
}

/** A CentOS/Ubuntu-era guest: the fixture's files plus what tells its init (and getty program) apart. */
export async function eraRoot(
  t: Parameters<typeof scratch>[0],
  era: XenEra,
  extra: readonly Plant[] = [],
): Promise<string> {
  const root = await plantedRoot(t, []);
  await plantXenGuestFiles(root, era);
  const initFiles: Record<XenEra, Plant[]> = {
    centos5: [file("/sbin/init", "stub: SysV init\n", 0o755), file("/sbin/agetty", "stub\n", 0o755)],
    centos6: [
      file("/sbin/init", "stub: upstart\n", 0o755),
      file("/sbin/initctl", "stub\n", 0o755),
      file("/sbin/agetty", "stub\n", 0o755),
      file(
        "/etc/init/serial.conf",
        [
          "# Starts a getty on the serial console the kernel command line names.",
          "start on fedora.serial-console-available DEV=* and stopped rc RUNLEVEL=[2345]",
          "stop on runlevel [S016]",
          "instance $DEV",
          "respawn",
          "pre-start exec /sbin/securetty $DEV",
          "exec /sbin/agetty /dev/$DEV $SPEED vt100-nav",
          "",
        ].join("\n"),
      ),
      file("/etc/init/tty.conf", "stop on runlevel [S016]\nrespawn\ninstance $TTY\nexec /sbin/mingetty $TTY\n"),
    ],
    "ubuntu-upstart": [file("/sbin/initctl", "stub\n", 0o755), file("/sbin/getty", "stub\n", 0o755)],
  };
  await plant(root, [...initFiles[era], ...extra]);
  return root;
}
