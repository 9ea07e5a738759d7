/**
 * The files of the Xen guests the original chromogenic converted to KVM (CentOS 5 and 6 and upstart-era
 * Ubuntu images from Eucalyptus), for file-level tests of the Xen → KVM edits; no package manager or kernel
 * is involved. The contents follow what those distributions shipped and what the original's edits matched
 * (see ../shared/reference/chromogenic-inventory.md §3); the wording of the comments in them is ours.
 *
 * Each file says what it models, which of its lines are the Xen-specific ones a conversion must remove or
 * rewrite (`xen`), and which belong to the site and must come through unchanged (`keep`). How the
 * converted file reads otherwise is for the edits' own tests to state.
 */
import { plant, type Plant } from "./debian-guest.js";

export type XenEra = "centos5" | "centos6" | "ubuntu-upstart";

export interface XenGuestFile {
  /** The guest path. */
  readonly path: string;
  /** The file's content, or a link's target (a relative target stays inside the guest). */
  readonly content?: string;
  readonly link?: string;
  readonly mode?: number;
  /** What the file models. */
  readonly models: string;
  /** Whole lines that are Xen-specific: a conversion removes or rewrites each one. */
  readonly xen?: readonly string[];
  /** Whole lines that are the site's own: a conversion leaves each one as it is. */
  readonly keep?: readonly string[];
}

/** The Eucalyptus boot block the original cut out of rc.local, from `depmod -a` to the atmo_boot call. */
export const ATMO_BOOT_BLOCK = [
  "depmod -a",
  "modprobe acpiphp",
  "# Eucalyptus: fetch the instance's public key from the metadata service",
  "mkdir -p /root/.ssh",
  "curl -s -f -o /root/.ssh/authorized_keys http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key",
  "chmod 600 /root/.ssh/authorized_keys",
  "/usr/bin/ruby /usr/sbin/atmo_boot",
] as const;

/** A line the site added to rc.local after the Atmosphere block: it must survive the block's removal. */
const SITE_RC_LINE = "/usr/local/sbin/site-startup --quiet";

function rcLocal(header: string): string {
  return [header, "", ...ATMO_BOOT_BLOCK, SITE_RC_LINE, "exit 0", ""].join("\n");
}

const CENTOS5_KERNEL = "2.6.18-398.el5xen";
const CENTOS6_KERNEL = "2.6.32-573.el6.x86_64";
const UBUNTU_KERNEL = "3.2.0-126-virtual";

function centos5(): XenGuestFile[] {
  const xvc0Getty = "xvc0:2345:respawn:/sbin/mingetty xvc0";
  return [
    { path: "/etc/redhat-release", content: "CentOS release 5.11 (Final)\n", models: "how the distribution is told" },
    {
      path: "/etc/inittab",
      models: "SysV init's table on CentOS 5: runlevel 3, gettys on the VTs and on xvc0, the Xen console",
      content: [
        "# Default runlevel.",
        "id:3:initdefault:",
        "si::sysinit:/etc/rc.d/rc.sysinit",
        "l3:3:wait:/etc/rc.d/rc 3",
        "ca::ctrlaltdel:/sbin/shutdown -t3 -r now",
        "1:2345:respawn:/sbin/mingetty tty1",
        "2:2345:respawn:/sbin/mingetty tty2",
        xvc0Getty,
        "",
      ].join("\n"),
      xen: [xvc0Getty],
      keep: ["id:3:initdefault:", "1:2345:respawn:/sbin/mingetty tty1"],
    },
    {
      path: "/etc/securetty",
      models: "the terminals root may log in on: the Xen console is one, the serial port is not yet",
      content: "console\nvc/1\ntty1\ntty2\nxvc0\n",
      keep: ["tty1"],
    },
    {
      path: "/etc/modprobe.conf",
      models: "CentOS 5's module aliases: the disk controller and the NIC are Xen's paravirtual frontends",
      content: "alias eth0 xennet\nalias scsi_hostadapter xenblk\noptions loop max_loop=64\n",
      xen: ["alias eth0 xennet", "alias scsi_hostadapter xenblk"],
      keep: ["options loop max_loop=64"],
    },
    {
      path: "/etc/fstab",
      models: "Eucalyptus' disk layout: root on sda1, ephemeral on sda2, swap on sda3 (names Xen hands over)",
      content: [
        "/dev/sda1\t/\text3\tdefaults\t1 1",
        "/dev/sda2\t/mnt\text3\tdefaults\t0 0",
        "/dev/sda3\tswap\tswap\tdefaults\t0 0",
        "none\t/dev/pts\tdevpts\tgid=5,mode=620\t0 0",
        "none\t/proc\tproc\tdefaults\t0 0",
        "none\t/sys\tsysfs\tdefaults\t0 0",
        "",
      ].join("\n"),
      xen: ["/dev/sda1\t/\text3\tdefaults\t1 1"],
      keep: ["none\t/proc\tproc\tdefaults\t0 0"],
    },
    {
      path: "/boot/grub/grub.conf",
      models: "grub-legacy's configuration as pygrub read it: a Xen (el5xen) kernel on the Xen console",
      content: [
        "default=0",
        "timeout=5",
        `title CentOS (${CENTOS5_KERNEL})`,
        "\troot (hd0,0)",
        `\tkernel /boot/vmlinuz-${CENTOS5_KERNEL} ro root=/dev/sda1 console=xvc0`,
        `\tinitrd /boot/initrd-${CENTOS5_KERNEL}.img`,
        "",
      ].join("\n"),
      xen: [`\tkernel /boot/vmlinuz-${CENTOS5_KERNEL} ro root=/dev/sda1 console=xvc0`],
    },
    { path: "/boot/grub/menu.lst", link: "./grub.conf", models: "CentOS's link: pygrub looks for menu.lst" },
    { path: "/etc/grub.conf", link: "../boot/grub/grub.conf", models: "CentOS's link from /etc" },
    {
      path: `/boot/vmlinuz-${CENTOS5_KERNEL}`,
      content: "stub: a Xen-only (paravirtual) CentOS 5 kernel\n",
      models: "the el5xen kernel, which boots only as a Xen PV guest (a stub, not a kernel)",
    },
    {
      path: `/boot/initrd-${CENTOS5_KERNEL}.img`,
      content: "stub: an initrd with xenblk and xennet\n",
      models: "its initrd (a stub)",
    },
    {
      path: "/etc/rc.d/rc.local",
      mode: 0o755,
      models: "rc.local with the Eucalyptus/Atmosphere boot block the original removed, then a site line",
      content: rcLocal("#!/bin/sh\n# Runs after every other init script.\ntouch /var/lock/subsys/local"),
      xen: [...ATMO_BOOT_BLOCK],
      keep: ["touch /var/lock/subsys/local", SITE_RC_LINE],
    },
    { path: "/etc/rc.local", link: "rc.d/rc.local", models: "CentOS's link to rc.d/rc.local" },
  ];
}

function centos6(): XenGuestFile[] {
  return [
    { path: "/etc/redhat-release", content: "CentOS release 6.7 (Final)\n", models: "how the distribution is told" },
    {
      path: "/etc/inittab",
      models: "CentOS 6's inittab: upstart reads only the default runlevel from it",
      content:
        "# Upstart starts the gettys (/etc/init/tty.conf, serial.conf); only this line is read.\nid:3:initdefault:\n",
      keep: ["id:3:initdefault:"],
    },
    {
      path: "/etc/modprobe.conf",
      models: "the aliases Eucalyptus' CentOS 6 images still carried in the old file",
      content: "alias eth0 xennet\nalias scsi_hostadapter xenblk\n",
      xen: ["alias eth0 xennet", "alias scsi_hostadapter xenblk"],
    },
    {
      path: "/etc/fstab",
      models: "RHEL 6 kernels named the first Xen disk xvde, not xvda: the root on xvde1, swap on xvde3",
      content:
        "/dev/xvde1\t/\text4\tdefaults\t1 1\n/dev/xvde3\tswap\tswap\tdefaults\t0 0\ntmpfs\t/dev/shm\ttmpfs\tdefaults\t0 0\n",
      xen: ["/dev/xvde1\t/\text4\tdefaults\t1 1"],
      keep: ["tmpfs\t/dev/shm\ttmpfs\tdefaults\t0 0"],
    },
    {
      path: "/boot/grub/grub.conf",
      models: "pygrub's grub-legacy configuration with the Xen console on the kernel command line",
      content: [
        "default=0",
        "timeout=1",
        `title CentOS (${CENTOS6_KERNEL})`,
        "\troot (hd0,0)",
        `\tkernel /boot/vmlinuz-${CENTOS6_KERNEL} ro root=/dev/xvde1 console=hvc0 xencons=tty0`,
        `\tinitrd /boot/initramfs-${CENTOS6_KERNEL}.img`,
        "",
      ].join("\n"),
      xen: [`\tkernel /boot/vmlinuz-${CENTOS6_KERNEL} ro root=/dev/xvde1 console=hvc0 xencons=tty0`],
    },
    { path: "/boot/grub/menu.lst", link: "./grub.conf", models: "CentOS's link: pygrub looks for menu.lst" },
    {
      path: "/etc/rc.d/rc.local",
      mode: 0o755,
      models: "rc.local with the Eucalyptus/Atmosphere boot block, then a site line",
      content: rcLocal("#!/bin/sh\ntouch /var/lock/subsys/local"),
      xen: [...ATMO_BOOT_BLOCK],
      keep: [SITE_RC_LINE],
    },
    { path: "/etc/rc.local", link: "rc.d/rc.local", models: "CentOS's link to rc.d/rc.local" },
  ];
}

function ubuntuUpstart(): XenGuestFile[] {
  const upstartHeader = (tty: string) => [
    `# ${tty} - getty`,
    "#",
    `# Keeps a login prompt on ${tty} from the end of the boot scripts until shutdown.`,
    "",
    "start on stopped rc RUNLEVEL=[2345]",
    "stop on runlevel [!2345]",
    "",
    "respawn",
  ];
  return [
    {
      path: "/etc/lsb-release",
      content:
        'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\nDISTRIB_CODENAME=precise\nDISTRIB_DESCRIPTION="Ubuntu 12.04.5 LTS"\n',
      models: "how the distribution is told",
    },
    {
      path: "/etc/init/hvc0.conf",
      models: "the upstart job for a getty on hvc0, the Xen console (the original deleted the file)",
      content: [...upstartHeader("hvc0"), "exec /sbin/getty -8 38400 hvc0", ""].join("\n"),
      xen: ["exec /sbin/getty -8 38400 hvc0"],
    },
    {
      path: "/etc/init/tty1.conf",
      models: "an ordinary VT getty job, which a conversion leaves alone",
      content: [...upstartHeader("tty1"), "exec /sbin/getty -8 38400 tty1", ""].join("\n"),
      keep: ["exec /sbin/getty -8 38400 tty1"],
    },
    {
      path: "/etc/fstab",
      models: "Ubuntu's cloud image fstab on Eucalyptus: root by label, ephemeral sda2, swap sda3, a volume vdb",
      content: [
        "LABEL=cloudimg-rootfs\t/\text4\tdefaults\t0 0",
        "/dev/sda2\t/mnt\tauto\tdefaults,nobootwait,comment=cloudconfig\t0 2",
        "/dev/sda3\tnone\tswap\tsw,comment=cloudconfig\t0 0",
        "/dev/vdb\t/data\text4\tdefaults,nobootwait\t0 2",
        "proc\t/proc\tproc\tnodev,noexec,nosuid\t0 0",
        "",
      ].join("\n"),
      xen: [
        "/dev/sda2\t/mnt\tauto\tdefaults,nobootwait,comment=cloudconfig\t0 2",
        "/dev/sda3\tnone\tswap\tsw,comment=cloudconfig\t0 0",
      ],
      keep: ["proc\t/proc\tproc\tnodev,noexec,nosuid\t0 0"],
    },
    {
      path: "/boot/grub/menu.lst",
      models: "pygrub's grub-legacy menu for Ubuntu's -virtual kernel on the Xen console",
      content: [
        "default 0",
        "timeout 3",
        `title Ubuntu 12.04.5 LTS, kernel ${UBUNTU_KERNEL}`,
        "\troot (hd0)",
        `\tkernel /boot/vmlinuz-${UBUNTU_KERNEL} root=LABEL=cloudimg-rootfs ro console=hvc0`,
        `\tinitrd /boot/initrd.img-${UBUNTU_KERNEL}`,
        "",
      ].join("\n"),
      xen: [`\tkernel /boot/vmlinuz-${UBUNTU_KERNEL} root=LABEL=cloudimg-rootfs ro console=hvc0`],
    },
    {
      path: "/etc/rc.local",
      mode: 0o755,
      models: "Ubuntu's rc.local with the Atmosphere boot block, then a site line",
      content: rcLocal("#!/bin/sh -e\n# Runs at the end of each multiuser runlevel."),
      xen: [...ATMO_BOOT_BLOCK],
      keep: [SITE_RC_LINE, "exit 0"],
    },
  ];
}

export function xenGuestFiles(era: XenEra): readonly XenGuestFile[] {
  switch (era) {
    case "centos5":
      return centos5();
    case "centos6":
      return centos6();
    case "ubuntu-upstart":
      return ubuntuUpstart();
  }
}

/**
 * Writes the era's files under `root` (created as needed, never through a link already there), owned by the
 * caller so that file-level tests need no root.
 */
export async function plantXenGuestFiles(root: string, era: XenEra): Promise<readonly XenGuestFile[]> {
  const files = xenGuestFiles(era);
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const plants = files.map((f): Plant => {
    if (f.link !== undefined) return { op: "symlink", path: f.path, target: f.link };
    return { op: "file", path: f.path, content: f.content ?? "", mode: f.mode ?? 0o644, ...owner };
  });
  await plant(root, plants);
  return files;
}
