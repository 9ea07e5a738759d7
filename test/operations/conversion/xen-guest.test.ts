import { test } from "node:test";
import assert from "node:assert/strict";
import { detectInitSystem } from "../../../src/operations/conversion/init-system.js";
import { detectXenGuest } from "../../../src/operations/conversion/xen-guest.js";
import { debianXenPlants, eraRoot, file, plantedRoot } from "./conversion-trees.js";

const findings = async (root: string, bareFilesystem = false) =>
  (await detectXenGuest(root, { bareFilesystem })).evidence.map(
    (e) => `${e.strong ? "" : "(weak) "}${e.file}: ${e.finding}`,
  );

test("a Debian guest made for Xen: every sign, each with the file it is in", async (t) => {
  const root = await plantedRoot(t, debianXenPlants());
  const detection = await detectXenGuest(root);
  assert.equal(detection.xen, true);
  assert.deepEqual(await findings(root), [
    "/etc/fstab: mounts / from the Xen disk /dev/xvda1",
    "/etc/fstab: mounts /srv from the Xen disk /dev/xvda2",
    "/etc/fstab: swaps on the Xen disk /dev/xvda3",
    "/etc/fstab: mounts xenfs on /proc/xen",
    "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service: a getty enabled on the Xen console",
    "/etc/modprobe.d/xen.conf: aliases a Xen driver: alias eth0 xen-netfront",
    "/etc/initramfs-tools/modules: loads the Xen driver xen-blkfront",
    "/etc/initramfs-tools/modules: loads the Xen driver xen-netfront",
    "/etc/default/grub: a kernel command line with console=hvc0",
    "/boot/grub/grub.cfg: a kernel command line with console=hvc0",
  ]);
});

test("the CentOS 5/6 and upstart-era guests are Xen guests; a menu.lst alone or sda1 on a disk is not", async (t) => {
  assert.deepEqual(await findings(await eraRoot(t, "centos5"), true), [
    "/etc/fstab: mounts / from /dev/sda1, and the image is a bare filesystem (a Xen whole-disk attachment)",
    "/etc/inittab: runs a getty on the Xen console: xvc0:2345:respawn:/sbin/mingetty xvc0",
    "/etc/modprobe.conf: aliases a Xen driver: alias eth0 xennet",
    "/etc/modprobe.conf: aliases a Xen driver: alias scsi_hostadapter xenblk",
    "/boot/vmlinuz-2.6.18-398.el5xen: a Xen-only kernel",
    "/boot/grub/menu.lst: a kernel command line with console=xvc0",
    "(weak) /boot/grub/menu.lst: a GRUB legacy menu, which Xen's pygrub reads",
  ]);
  assert.equal((await detectXenGuest(await eraRoot(t, "centos6"))).xen, true);
  assert.ok(
    (await findings(await eraRoot(t, "ubuntu-upstart"))).includes(
      "/etc/init/hvc0.conf: an upstart job for a getty on the Xen console",
    ),
  );
  const pc = await plantedRoot(t, [
    file("/etc/fstab", "/dev/sda1 / ext3 defaults 1 1\n"),
    file("/boot/grub/menu.lst", "title Linux\n\tkernel /boot/vmlinuz-2.6.32 ro root=/dev/sda1\n"),
  ]);
  const detection = await detectXenGuest(pc);
  assert.equal(detection.xen, false);
  assert.deepEqual(await findings(pc), ["(weak) /boot/grub/menu.lst: a GRUB legacy menu, which Xen's pygrub reads"]);
  assert.equal((await detectXenGuest(pc, { bareFilesystem: true })).xen, true);
});

test("the init each era boots", async (t) => {
  assert.deepEqual(await detectInitSystem(await plantedRoot(t, debianXenPlants())), {
    init: "systemd",
    evidence: "/sbin/init -> /lib/systemd/systemd",
  });
  assert.equal((await detectInitSystem(await eraRoot(t, "centos5"))).init, "sysvinit");
  assert.equal((await detectInitSystem(await eraRoot(t, "centos6"))).init, "upstart");
  assert.equal((await detectInitSystem(await eraRoot(t, "ubuntu-upstart"))).init, "upstart");
  // Without the control tool: jobs and an inittab that starts nothing still mean upstart.
  const bare = await plantedRoot(t, [
    file("/etc/inittab", "id:3:initdefault:\n"),
    file("/etc/init/tty.conf", "respawn\nexec /sbin/mingetty $TTY\n"),
  ]);
  assert.deepEqual(await detectInitSystem(bare), {
    init: "upstart",
    evidence: "1 job(s) in /etc/init, and no inittab starting processes",
  });
  assert.equal((await detectInitSystem(await plantedRoot(t, [file("/etc/hostname", "x\n")]))).init, "unknown");
});
