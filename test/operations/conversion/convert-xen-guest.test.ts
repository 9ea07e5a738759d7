import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { convertXenGuest, type ConvertXenGuestOptions } from "../../../src/operations/conversion/convert-xen-guest.js";
import type { XenConversionReport } from "../../../src/operations/conversion/conversion-report.js";
import { APPLIANCE_WRITTEN_FILES } from "../../../src/operations/conversion/initramfs/rebuild-plan.js";
import { upstartSerialJob } from "../../../src/operations/conversion/edits/serial-console.js";
import { NOTE_PREFIX } from "../../../src/operations/conversion/line-changes.js";
import { scratch } from "../../helpers/tools.js";
import { describeDiff, diffManifests, takeManifest, touchedPaths } from "../../helpers/tree-manifest.js";
import { ATMO_BOOT_BLOCK, xenGuestFiles, type XenEra } from "../../helpers/xen-guest-files.js";
import {
  DATA_UUID,
  DEBIAN_KERNEL,
  debianInitramfs,
  debianVersionString,
  debianXenPlants,
  eraRoot,
  file,
  kernelImage,
  plantedRoot,
  ROOT_UUID,
  VIRTIO_INITRAMFS_FILES,
  XEN_ONLY_INITRAMFS_FILES,
} from "./conversion-trees.js";

const text = (root: string, path: string) => readFile(join(root, path), "latin1");
const note = (why: string) => `${NOTE_PREFIX} ${why}`;
/** A fixture file's content as planted. */
const fixture = (era: XenEra, path: string) => xenGuestFiles(era).find((f) => f.path === path)!.content!;
/** An fstab line disabled because its device will not exist: the note, then the line commented out. */
const absent = (line: string) => [note(`${line.split("\t")[0]} will not exist on the KVM machine`), `#${line}`];

/**
 * Runs a dry run, the conversion, and a second conversion: the dry run changes nothing and reports what the
 * real run does; the real run changes exactly the paths it reports (and folders it had to create for them);
 * the second run changes nothing.
 */
async function convertThrice(root: string, options: ConvertXenGuestOptions): Promise<XenConversionReport> {
  const before = await takeManifest(root);
  const dry = await convertXenGuest(root, { ...options, dryRun: true });
  assert.equal(describeDiff(diffManifests(before, await takeManifest(root))), "", "the dry run changed the tree");
  const real = await convertXenGuest(root, options);
  assert.deepEqual(dry.changes, real.changes);
  assert.deepEqual(dry.blockers, real.blockers);
  assert.deepEqual(dry.boot, real.boot);
  assert.deepEqual(dry.initramfs, real.initramfs);
  const converted = await takeManifest(root);
  const reported = new Set(real.changes.map((c) => c.path));
  for (const path of touchedPaths(diffManifests(before, converted)))
    assert.ok(
      reported.has(path) || [...reported].some((r) => r.startsWith(`${path}/`)),
      `${path} changed but was not reported`,
    );
  for (const path of reported) assert.ok(touchedPaths(diffManifests(before, converted)).includes(path));
  const again = await convertXenGuest(root, options);
  assert.deepEqual(again.changes, [], "a second run changes nothing");
  assert.equal(describeDiff(diffManifests(converted, await takeManifest(root))), "");
  return real;
}

const changedPaths = (report: XenConversionReport) => report.changes.map((c) => `${c.edit} ${c.action} ${c.path}`);

test("Debian 12 Xen guest on systemd: fstab, gettys, command lines, aliases; its initramfs needs a rebuild", async (t) => {
  const root = await plantedRoot(t, debianXenPlants());
  await writeFile(join(root, `boot/vmlinuz-${DEBIAN_KERNEL}`), kernelImage(debianVersionString(DEBIAN_KERNEL)));
  await writeFile(join(root, `boot/initrd.img-${DEBIAN_KERNEL}`), await debianInitramfs(XEN_ONLY_INITRAMFS_FILES));
  const fstabIno = (await stat(join(root, "etc/fstab"))).ino;
  const report = await convertThrice(root, { deviceUuids: { "/dev/xvda1": ROOT_UUID, "/dev/xvda2": DATA_UUID } });

  assert.equal(report.xen.xen, true);
  assert.equal(report.init.init, "systemd");
  assert.deepEqual(changedPaths(report), [
    "xen-module-aliases edit /etc/modprobe.d/xen.conf",
    "fstab-uuid edit /etc/fstab",
    "serial-console remove /etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
    "serial-console create /etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
    "kernel-command-line edit /etc/default/grub",
    "kernel-command-line edit /boot/grub/grub.cfg",
    "initramfs-modules edit /etc/initramfs-tools/modules",
  ]);
  assert.equal(
    await text(root, "etc/fstab"),
    [
      "# <file system> <mount point> <type> <options> <dump> <pass>",
      `UUID=${ROOT_UUID}\t/\text4\terrors=remount-ro\t0\t1`,
      `UUID=${DATA_UUID}\t/srv\text4\tdefaults\t0\t2`,
      ...absent("/dev/xvda3\tnone\tswap\tsw\t0\t0"),
      note("xenfs exists only in a Xen guest"),
      "#xenfs\t/proc/xen\txenfs\tdefaults\t0\t0",
      "tmpfs\t/tmp\ttmpfs\tdefaults\t0\t0",
      "",
    ].join("\n"),
  );
  assert.equal((await stat(join(root, "etc/fstab"))).ino, fstabIno, "edited in place");
  const fstabChange = report.changes.find((c) => c.path === "/etc/fstab")!;
  assert.equal(fstabChange.detail, "changed lines 2, 3; commented out lines 4, 5");
  assert.deepEqual(fstabChange.lines![0], {
    kind: "changed",
    line: 2,
    before: "/dev/xvda1\t/\text4\terrors=remount-ro\t0\t1",
    after: [`UUID=${ROOT_UUID}\t/\text4\terrors=remount-ro\t0\t1`],
  });
  await assert.rejects(lstat(join(root, "etc/systemd/system/getty.target.wants/serial-getty@hvc0.service")));
  assert.equal(
    await readlink(join(root, "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service")),
    "/lib/systemd/system/serial-getty@.service",
  );
  assert.equal(
    await readlink(join(root, "etc/systemd/system/getty.target.wants/getty@tty1.service")),
    "/lib/systemd/system/getty@.service",
  );
  assert.match(
    await text(root, "etc/default/grub"),
    new RegExp(`\nGRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200 root=UUID=${ROOT_UUID}"\n`),
  );
  assert.match(await text(root, "etc/default/grub"), /\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n/);
  assert.match(
    await text(root, "boot/grub/grub.cfg"),
    new RegExp(
      `\n\tlinux\t/boot/vmlinuz-${DEBIAN_KERNEL} root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200 quiet\n`,
    ),
  );
  assert.equal(
    await text(root, "etc/modprobe.d/xen.conf"),
    `# Xen front ends\n${note("xen-netfront is a Xen driver; KVM guests use virtio")}\n#alias eth0 xen-netfront\noptions loop max_loop=8\n`,
  );
  assert.equal(await text(root, "etc/rc.local"), "#!/bin/sh -e\n/usr/local/bin/site-start\nexit 0\n");

  assert.deepEqual(report.boot, {
    version: DEBIAN_KERNEL,
    kernel: `/boot/vmlinuz-${DEBIAN_KERNEL}`,
    initramfs: `/boot/initrd.img-${DEBIAN_KERNEL}`,
    origin: "guest",
    arguments: `root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200 quiet`,
  });
  assert.equal(report.initramfs?.verdict, "must-rebuild");
  assert.match(report.initramfs!.reason, /has no virtio_blk and virtio_pci.*xen-blkfront/);
  assert.equal(report.initramfs?.drivers.xen_blkfront, "module");
  assert.equal(report.initramfs?.drivers.sd_mod, "built-in");
  assert.deepEqual(report.initramfs?.parts, ["cpio", "zstd"]);
  // The rebuild is asked for (initramfs.conf is absent: MODULES=most) and planned, not run: no guest program here.
  assert.equal(
    await text(root, "etc/initramfs-tools/modules"),
    [
      "xen-blkfront",
      "xen-netfront",
      `${NOTE_PREFIX} the virtio drivers a KVM machine boots from`,
      "virtio_pci",
      "virtio_blk",
      "virtio_scsi",
      "virtio_net",
      "",
    ].join("\n"),
  );
  assert.match(report.changes.at(-1)!.detail!, /^added 5 lines at the end \(MODULES=most/);
  assert.deepEqual(report.initramfsRebuild, {
    tool: "update-initramfs",
    version: DEBIAN_KERNEL,
    initramfs: `/boot/initrd.img-${DEBIAN_KERNEL}`,
    command: ["update-initramfs", "-u", "-k", DEBIAN_KERNEL],
    // None of them is in the planted guest: whatever virt-customize writes there is removed again.
    restore: { truncate: [], remove: [...APPLIANCE_WRITTEN_FILES] },
  });
  assert.deepEqual(report.blockers, []);
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report, "the report is plain JSON");
});

test("Debian guest whose initramfs has virtio: verdict ok; the same guest without UUIDs is blocked on its root", async (t) => {
  const root = await plantedRoot(t, debianXenPlants());
  await writeFile(join(root, `boot/vmlinuz-${DEBIAN_KERNEL}`), kernelImage(debianVersionString(DEBIAN_KERNEL)));
  await writeFile(
    join(root, `boot/initrd.img-${DEBIAN_KERNEL}`),
    await debianInitramfs(VIRTIO_INITRAMFS_FILES, "gzip"),
  );
  const report = await convertXenGuest(root, { dryRun: true });
  assert.equal(report.initramfs?.verdict, "ok");
  assert.equal(report.initramfs?.drivers.virtio_blk, "module");
  assert.deepEqual(report.blockers, [
    "/etc/fstab mounts / from /dev/xvda1, which will not exist under KVM, and no UUID was given",
  ]);
  // Without a UUID the root stays as it was (nothing better to put there); the rest is still converted.
  assert.ok(!report.changes.some((c) => c.lines?.some((l) => l.before?.startsWith("/dev/xvda1"))));
  assert.ok(report.changes.some((c) => c.lines?.some((l) => l.before?.startsWith("/dev/xvda3"))));
});

test("CentOS 5 (SysV init): inittab, securetty, modprobe.conf, fstab, grub.conf through its links, rc.local", async (t) => {
  const root = await eraRoot(t, "centos5");
  const rcMode = (await stat(join(root, "etc/rc.d/rc.local"))).mode;
  const report = await convertThrice(root, { rootUuid: ROOT_UUID, bareFilesystem: true });
  assert.equal(report.xen.xen, true);
  assert.equal(report.init.init, "sysvinit");
  const xvc0 = "xvc0:2345:respawn:/sbin/mingetty xvc0";
  assert.equal(
    await text(root, "etc/inittab"),
    fixture("centos5", "/etc/inittab").replace(
      `${xvc0}\n`,
      `${note("a getty on the Xen console, which KVM has not")}\n#${xvc0}\nT0:2345:respawn:/sbin/agetty -L ttyS0 115200 vt100\n`,
    ),
  );
  assert.equal(await text(root, "etc/securetty"), "console\nvc/1\ntty1\ntty2\nxvc0\nttyS0\n");
  assert.equal(
    await text(root, "etc/modprobe.conf"),
    [
      note("xennet is a Xen driver; KVM guests use virtio"),
      "#alias eth0 xennet",
      note("xenblk is a Xen driver; KVM guests use virtio"),
      "#alias scsi_hostadapter xenblk",
      "options loop max_loop=64",
      "",
    ].join("\n"),
  );
  assert.equal(
    await text(root, "etc/fstab"),
    [
      `UUID=${ROOT_UUID}\t/\text3\tdefaults\t1 1`,
      ...absent("/dev/sda2\t/mnt\text3\tdefaults\t0 0"),
      ...absent("/dev/sda3\tswap\tswap\tdefaults\t0 0"),
      "none\t/dev/pts\tdevpts\tgid=5,mode=620\t0 0",
      "none\t/proc\tproc\tdefaults\t0 0",
      "none\t/sys\tsysfs\tdefaults\t0 0",
      "",
    ].join("\n"),
  );
  // menu.lst and /etc/grub.conf are links to grub.conf: the file is edited once, the links stay links.
  assert.deepEqual(
    report.changes.filter((c) => c.edit === "kernel-command-line").map((c) => c.path),
    ["/boot/grub/grub.conf"],
  );
  assert.equal(await readlink(join(root, "etc/grub.conf")), "../boot/grub/grub.conf");
  assert.match(
    await text(root, "boot/grub/grub.conf"),
    new RegExp(
      `\n\tkernel /boot/vmlinuz-2\\.6\\.18-398\\.el5xen ro root=UUID=${ROOT_UUID} console=tty0 console=ttyS0,115200\n`,
    ),
  );
  const rc = await text(root, "etc/rc.d/rc.local");
  for (const line of ATMO_BOOT_BLOCK) assert.ok(!rc.split("\n").includes(line), `${line} removed`);
  assert.equal(
    rc,
    "#!/bin/sh\n# Runs after every other init script.\ntouch /var/lock/subsys/local\n\n/usr/local/sbin/site-startup --quiet\nexit 0\n",
  );
  assert.equal((await stat(join(root, "etc/rc.d/rc.local"))).mode, rcMode, "rc.local keeps its mode");
  // Only the el5xen kernel: nothing a PC boots, and none given.
  assert.equal(report.boot, null);
  assert.equal(report.blockers.length, 1);
  assert.match(
    report.blockers[0]!,
    /no kernel a PC can boot \(\/boot\/vmlinuz-2\.6\.18-398\.el5xen: a Xen-only kernel\)/,
  );
  assert.deepEqual(
    report.edits.find((e) => e.name === "initramfs-virtio"),
    {
      name: "initramfs-virtio",
      skipped: "no kernel for a PC to check",
    },
  );
});

test("CentOS 5 with an external kernel and ramdisk: installed under the header's release, checked, booted by UUID", async (t) => {
  const root = await eraRoot(t, "centos5");
  const dir = await scratch(t, "chromo-eki-");
  const release = "2.6.18-398.el5";
  // The file names say nothing: the release comes from the kernel's header.
  await writeFile(join(dir, "eki-12345"), kernelImage(`${release} (mockbuild@builder10.centos.org) #1 SMP`));
  const ramdisk = Buffer.concat([
    await debianInitramfs(
      {
        [`lib/virtio_blk.ko`]: "m\n",
        [`lib/virtio_pci.ko`]: "m\n",
        [`lib/virtio.ko`]: "m\n",
        [`lib/virtio_ring.ko`]: "m\n",
        init: "#!/bin/nash\n",
      },
      "gzip",
    ),
  ]);
  await writeFile(join(dir, "eri-67890"), ramdisk);
  const report = await convertThrice(root, {
    rootUuid: ROOT_UUID,
    kernel: join(dir, "eki-12345"),
    ramdisk: join(dir, "eri-67890"),
  });
  assert.deepEqual(
    report.changes.filter((c) => c.edit === "external-kernel").map((c) => [c.action, c.path]),
    [
      ["create", `/boot/vmlinuz-${release}`],
      ["create", `/boot/initrd-${release}.img`],
    ],
  );
  assert.deepEqual(await readFile(join(root, `boot/initrd-${release}.img`)), ramdisk);
  assert.equal((await stat(join(root, `boot/vmlinuz-${release}`))).mode & 0o777, 0o644);
  assert.deepEqual(report.boot, {
    version: release,
    kernel: `/boot/vmlinuz-${release}`,
    initramfs: `/boot/initrd-${release}.img`,
    origin: "external",
    arguments: `root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200`,
  });
  assert.equal(report.initramfs?.verdict, "ok");
  assert.deepEqual(report.blockers, []);
  assert.ok(report.warnings.some((w) => w.includes(`no /lib/modules/${release}`)));
});

test("CentOS 6 (upstart): xvde names, hvc0 and xencons on the kernel line; serial.conf serves ttyS0", async (t) => {
  const root = await eraRoot(t, "centos6");
  const report = await convertThrice(root, { deviceUuids: { "/dev/xvde1": ROOT_UUID } });
  assert.equal(report.init.init, "upstart");
  assert.equal(
    await text(root, "etc/fstab"),
    [
      `UUID=${ROOT_UUID}\t/\text4\tdefaults\t1 1`,
      ...absent("/dev/xvde3\tswap\tswap\tdefaults\t0 0"),
      "tmpfs\t/dev/shm\ttmpfs\tdefaults\t0 0",
      "",
    ].join("\n"),
  );
  assert.match(
    await text(root, "boot/grub/grub.conf"),
    new RegExp(
      `\n\tkernel /boot/vmlinuz-2\\.6\\.32-573\\.el6\\.x86_64 ro root=UUID=${ROOT_UUID} console=tty0 console=ttyS0,115200\n`,
    ),
  );
  // RHEL 6's serial.conf starts agetty on the console the command line names: no second job on ttyS0.
  await assert.rejects(lstat(join(root, "etc/init/ttyS0.conf")));
  assert.equal(
    await text(root, "etc/inittab"),
    "# Upstart starts the gettys (/etc/init/tty.conf, serial.conf); only this line is read.\nid:3:initdefault:\n",
  );
  assert.match(await text(root, "etc/modprobe.conf"), /^#alias eth0 xennet$/m);
  assert.ok(!(await text(root, "etc/rc.d/rc.local")).includes("atmo_boot"));
});

test("Ubuntu (upstart): hvc0.conf removed, one ttyS0 job written, the original's two-exec getty.conf removed", async (t) => {
  const root = await eraRoot(t, "ubuntu-upstart", [
    // What the original chromogenic left: two exec stanzas in one job, which upstart refuses.
    file(
      "/etc/init/getty.conf",
      "start on stopped rc RUNLEVEL=[2345]\nstop on runlevel [!2345]\nrespawn\nexec /sbin/getty -L 38400 ttyS0 vt102\nexec /sbin/getty -L 38400 ttyS1 vt102\n",
    ),
  ]);
  const report = await convertThrice(root, { rootUuid: ROOT_UUID, bareFilesystem: true });
  assert.equal(report.init.init, "upstart");
  assert.deepEqual(
    report.changes.filter((c) => c.edit === "serial-console").map((c) => [c.action, c.path, c.detail]),
    [
      ["remove", "/etc/init/getty.conf", "an upstart job with 2 exec stanzas, which upstart refuses"],
      ["remove", "/etc/init/hvc0.conf", "an upstart job running a getty on the Xen console"],
      ["create", "/etc/init/ttyS0.conf", "an upstart job running a getty on ttyS0"],
    ],
  );
  const job = await text(root, "etc/init/ttyS0.conf");
  assert.equal(job, upstartSerialJob("/sbin/getty"));
  assert.deepEqual(
    job.split("\n").filter((l) => /^\s*exec\s/.test(l)),
    ["exec /sbin/getty -L ttyS0 115200 vt100"],
  );
  assert.ok((await text(root, "etc/init/tty1.conf")).includes("exec /sbin/getty -8 38400 tty1"));
  assert.equal(
    await text(root, "etc/fstab"),
    [
      `UUID=${ROOT_UUID}\t/\text4\tdefaults\t0 0`,
      ...absent("/dev/sda2\t/mnt\tauto\tdefaults,nobootwait,comment=cloudconfig\t0 2"),
      ...absent("/dev/sda3\tnone\tswap\tsw,comment=cloudconfig\t0 0"),
      ...absent("/dev/vdb\t/data\text4\tdefaults,nobootwait\t0 2"),
      "proc\t/proc\tproc\tnodev,noexec,nosuid\t0 0",
      "",
    ].join("\n"),
  );
  assert.match(
    await text(root, "boot/grub/menu.lst"),
    new RegExp(
      `\n\tkernel /boot/vmlinuz-3\\.2\\.0-126-virtual root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200\n`,
    ),
  );
  assert.equal(
    await text(root, "etc/rc.local"),
    "#!/bin/sh -e\n# Runs at the end of each multiuser runlevel.\n\n/usr/local/sbin/site-startup --quiet\nexit 0\n",
  );
});

test("selecting edits runs only those; an unknown edit or a malformed UUID is refused before anything changes", async (t) => {
  const root = await eraRoot(t, "centos5");
  const before = await takeManifest(root);
  await assert.rejects(convertXenGuest(root, { edits: ["fstab-uuid", "grub"] }), {
    code: "EUSAGE",
    message: /unknown Xen to KVM edit "grub" \(known: xen-module-aliases, atmosphere-boot-hooks, fstab-uuid,/,
  });
  await assert.rejects(convertXenGuest(root, { rootUuid: "abc\n/dev/sda9 / ext4" }), {
    code: "EUSAGE",
    message: /is not a filesystem UUID/,
  });
  await assert.rejects(convertXenGuest(root, { deviceUuids: { sda1: ROOT_UUID } }), { code: "EUSAGE" });
  await assert.rejects(convertXenGuest(root, { ramdisk: "/nonexistent" }), {
    message: "a ramdisk was given without a kernel",
  });
  assert.deepEqual(diffManifests(before, await takeManifest(root)).changed, []);
  const report = await convertXenGuest(root, { edits: ["xen-module-aliases"] });
  assert.deepEqual(report.edits, [{ name: "xen-module-aliases" }]);
  assert.deepEqual(
    report.changes.map((c) => c.path),
    ["/etc/modprobe.conf"],
  );
});

test("events: a message per change and per warning", async (t) => {
  const root = await eraRoot(t, "centos5");
  const events: unknown[] = [];
  const steps: string[] = [];
  const report = await convertXenGuest(root, {
    rootUuid: ROOT_UUID,
    onEvent: (e) => events.push(e),
    onEdit: (name) => steps.push(name),
  });
  assert.equal(events.length, report.changes.length + report.warnings.length);
  assert.deepEqual(events[0], {
    event: "message",
    level: "info",
    text: "xen-module-aliases: edit /etc/modprobe.conf: commented out lines 1, 2",
  });
  assert.deepEqual(steps, [...report.edits.map((e) => e.name), ""]);
});
