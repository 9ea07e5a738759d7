/**
 * `chromogenic bootable` on Xen guests (test/helpers/xen-guests.ts: Debian 12 made as Eucalyptus and old AWS
 * images are), through the CLI: detected and converted on the way — fstab and the command line by UUID, the
 * serial console for hvc0, the external kernel installed, a Xen-only initramfs given the virtio modules by an
 * appended archive (or, as the fallback, rebuilt inside the libguestfs appliance) — and each output booted
 * under qemu (TCG, SeaBIOS, virtio disk) to its login prompt.
 * The input is never changed. Needs root (loop devices, mounts) and the appliance (libguestfs-tools).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, open, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openGuest } from "../../src/guest/guest-session.js";
import { openGuestFile } from "../../src/operations/conversion/bounded-file.js";
import type { InitramfsOutcome } from "../../src/operations/conversion/conversion-report.js";
import type { XenConversionReport } from "../../src/operations/conversion/convert-xen-guest.js";
import { checkInitramfs } from "../../src/operations/conversion/initramfs/check-initramfs.js";
import type { BootableReport } from "../../src/workflows/bootable.js";
import { bootToLogin } from "../helpers/boot-in-qemu.js";
import { guestScratch } from "../helpers/clean-proof.js";
import { doneOf } from "../helpers/event-lines.js";
import { runCli, runOk, sha256File } from "../helpers/tools.js";
import { libguestfsEnv } from "../helpers/virt-sysprep.js";
import { xenOnlyInitramfsGuest as partitionedXenOnlyGuest } from "../helpers/xen-only-initramfs-guest.js";
import {
  XEN_GUEST_HOSTNAME,
  XEN_LVM_NAMES,
  xenBareExt4Guest,
  xenBareBtrfsGuest,
  xenBareXfsGuest,
  xenLvmGuest,
  xenOnlyInitramfsGuest,
  xenPygrubGuest,
} from "../helpers/xen-guests.js";

type Report = BootableReport & { xenToKvm?: XenConversionReport };

const MiB = 2 ** 20;

const LOGIN = new RegExp(`${XEN_GUEST_HOSTNAME} login:`);

test("a bare Xen root with its kernel outside (EKI/ERI) becomes a disk that boots on virtio", async (t) => {
  const guest = await xenBareExt4Guest();
  const s = await guestScratch(t);
  const before = await sha256File(guest.disk);
  const out = join(s.dir, "xen.qcow2");
  const r = await runCli(
    ["bootable", "--json", "-O", "qcow2", "--kernel", guest.kernel!, "--ramdisk", guest.initrd!, guest.disk, out],
    s.env,
  );
  assert.equal(r.code, 0, r.stderr);
  const report = doneOf(r.stdout, "bootable") as unknown as Report;
  assert.ok(report.xenToKvm, "the conversion ran");
  const edits = new Set(report.xenToKvm.changes.map((c) => c.edit));
  for (const edit of ["fstab-uuid", "serial-console", "external-kernel"]) assert.ok(edits.has(edit), `${edit} ran`);
  assert.deepEqual(report.xenToKvm.blockers, []);
  assert.equal(report.kernel?.version, guest.kernelVersion);
  assert.equal(await sha256File(guest.disk), before, "the input was changed");
  const boot = await bootToLogin(out, { format: "qcow2", bus: "virtio" });
  assert.match(boot.serial, LOGIN);
});

test("a bare XFS Xen root with its kernel outside, grown to --size, boots on virtio", async (t) => {
  const guest = await xenBareXfsGuest();
  const s = await guestScratch(t);
  const before = await sha256File(guest.disk);
  const out = join(s.dir, "xfs.qcow2");
  const r = await runCli(
    [
      "bootable",
      "--json",
      "-O",
      "qcow2",
      "--size",
      "1G",
      "--kernel",
      guest.kernel!,
      "--ramdisk",
      guest.initrd!,
      guest.disk,
      out,
    ],
    s.env,
  );
  assert.equal(r.code, 0, r.stderr);
  const report = doneOf(r.stdout, "bootable") as unknown as Report;
  assert.equal(report.layout?.table, "mbr");
  assert.equal(report.filesystems?.root.type, "xfs");
  assert.ok(report.loader?.modules?.includes("xfs"), `GRUB's core reads XFS: ${report.loader?.modules?.join(" ")}`);
  // XFS grows only mounted (xfs_growfs on the mount point): the partition is 1 GiB less the 1 MiB before it.
  assert.deepEqual(report.filesystems?.grown, [{ partition: 1, type: "xfs", from: 512 * MiB, to: 1023 * MiB }]);
  assert.ok(report.xenToKvm, "the conversion ran");
  const fstab = report.xenToKvm.changes.find((c) => c.edit === "fstab-uuid");
  assert.ok(fstab, "fstab-uuid ran");
  assert.match(JSON.stringify(fstab), new RegExp(`UUID=${guest.rootUuid}`));
  assert.deepEqual(report.xenToKvm.blockers, []);
  assert.equal(report.kernel?.version, guest.kernelVersion);
  assert.equal(await sha256File(guest.disk), before, "the input was changed");
  const boot = await bootToLogin(out, { format: "qcow2", bus: "virtio", signal: t.signal });
  t.diagnostic(`XFS root: login prompt after ${boot.seconds.toFixed(1)} s`);
  assert.match(boot.serial, LOGIN);
});

test("a bare btrfs Xen root with its kernel outside, grown to --size, boots on virtio", async (t) => {
  const guest = await xenBareBtrfsGuest();
  const s = await guestScratch(t);
  const out = join(s.dir, "btrfs.qcow2");
  const kernel = ["--kernel", guest.kernel!, "--ramdisk", guest.initrd!];
  const r = await runCli(["bootable", "--json", "-O", "qcow2", "--size", "1G", ...kernel, guest.disk, out], s.env);
  assert.equal(r.code, 0, r.stderr);
  const report = doneOf(r.stdout, "bootable") as unknown as Report;
  assert.equal(report.filesystems?.root.type, "btrfs");
  assert.ok(report.loader?.modules?.includes("btrfs"), `GRUB's core reads btrfs: ${report.loader?.modules?.join(" ")}`);
  // btrfs grows only mounted (btrfs filesystem resize max on the mount point). mkfs.btrfs --rootdir made the
  // filesystem a little larger than asked, to hold the tree: it starts at the input's size.
  const from = (await stat(guest.disk)).size;
  assert.deepEqual(report.filesystems?.grown, [{ partition: 1, type: "btrfs", from, to: 1023 * MiB }]);
  assert.deepEqual(report.xenToKvm?.blockers, []);
  const boot = await bootToLogin(out, { format: "qcow2", bus: "virtio", signal: t.signal });
  t.diagnostic(`btrfs root: login prompt after ${boot.seconds.toFixed(1)} s`);
  assert.match(boot.serial, LOGIN);
});

test("a pygrub disk with its root in LVM keeps its group, gets GRUB with lvm, and boots", async (t) => {
  // On a host whose kernel has no device-mapper (this one), the root volume is reached through a loop device
  // over its extents (src/guest/attach/linear-volumes.ts); elsewhere the group is activated.
  const guest = await xenLvmGuest();
  const s = await guestScratch(t);
  const before = await sha256File(guest.disk);
  const out = join(s.dir, "lvm.raw");
  const r = await runCli(["bootable", "--json", guest.disk, out], s.env);
  assert.equal(r.code, 0, r.stderr);
  const report = doneOf(r.stdout, "bootable") as unknown as Report;
  assert.equal(report.layout?.mode, "kept");
  assert.deepEqual(
    report.layout?.partitions.map((p) => [p.number, p.offset, p.role]),
    [[1, MiB, "lvm"]],
  );
  assert.ok(report.loader?.modules?.includes("lvm"), `GRUB's core reads LVM: ${report.loader?.modules?.join(" ")}`);
  assert.equal(report.xenToKvm?.xen.xen, true, "detected as a Xen guest");
  assert.deepEqual(report.xenToKvm?.blockers, []);
  assert.equal(await sha256File(guest.disk), before, "the input was changed");
  // The partition is still the physical volume (its label in sector 1, the group's metadata text after it).
  const pv = Buffer.alloc(MiB);
  const h = await open(out, "r");
  await h.read(pv, 0, MiB, MiB).finally(() => h.close());
  assert.equal(pv.toString("latin1", 512, 520), "LABELONE", "the partition is still an LVM physical volume");
  assert.ok(pv.includes(`${XEN_LVM_NAMES.volumeGroup} {`), `its metadata names ${XEN_LVM_NAMES.volumeGroup}`);
  const boot = await bootToLogin(out, { format: "raw", bus: "virtio", signal: t.signal });
  t.diagnostic(`root in LVM: login prompt after ${boot.seconds.toFixed(1)} s`);
  assert.match(boot.serial, LOGIN);
});

test("a pygrub disk (menu.lst, no boot code) is detected as Xen without being told, and boots", async (t) => {
  const guest = await xenPygrubGuest();
  const s = await guestScratch(t);
  const out = join(s.dir, "pygrub.raw");
  const r = await runCli(["bootable", "--json", guest.disk, out], s.env);
  assert.equal(r.code, 0, r.stderr);
  const report = doneOf(r.stdout, "bootable") as unknown as Report;
  assert.equal(report.xenToKvm?.xen.xen, true, "detected as a Xen guest");
  const boot = await bootToLogin(out, { format: "raw", bus: "virtio" });
  assert.match(boot.serial, LOGIN);
});

test("a Xen-only ramdisk given from outside, with no kernel config in the guest: refused, saying what to give", async (t) => {
  // The rebuild itself (the guest's update-initramfs inside the appliance, then a boot on virtio) is proved on a
  // guest that holds its kernel: test/operations/conversion/rebuild-initramfs.test.ts.
  const guest = await xenOnlyInitramfsGuest();
  const s = await guestScratch(t);
  const args = ["--kernel", guest.kernel!, "--ramdisk", guest.initrd!, guest.disk];
  const plan = await runCli(["bootable", "--json", "--dry-run", ...args], s.env);
  assert.equal(plan.code, 0, plan.stderr);
  const planned = doneOf(plan.stdout, "bootable") as unknown as Report;
  assert.equal(planned.xenToKvm?.initramfs?.verdict, "must-rebuild");
  assert.ok(
    planned.warnings.some((w) => /would not boot: .*\/boot\/config-/.test(w)),
    planned.warnings.join("\n"),
  );
  const out = join(s.dir, "refused.qcow2");
  const r = await runCli(["bootable", "-O", "qcow2", ...args, out], s.env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot make this guest boot: .*give a ramdisk with virtio_blk and virtio_pci/);
  assert.deepEqual(
    (await readdir(s.dir)).filter((n) => n !== "state"),
    [],
  );
});

/** The initramfs of a converted raw disk: our check of it, and Debian's own lsinitramfs listing. */
async function initramfsOf(disk: string, path: string, version: string) {
  const session = await openGuest(disk, { readOnly: true, format: "raw" });
  try {
    const root = session.mounted.root;
    const check = await checkInitramfs({
      version,
      guestPath: path,
      open: () => openGuestFile(root, path, 2 ** 30),
      modulesBuiltin: null,
      config: await readFile(join(root, `boot/config-${version}`), "utf8"),
    });
    const listed = (await runOk("lsinitramfs", [join(root, path)])).split("\n");
    return { check, listed, mode: (await stat(join(root, path))).mode & 0o7777 };
  } finally {
    await session.close();
  }
}

test("a Xen-only initramfs in the guest gets the virtio modules appended in seconds, no appliance, and boots", async (t) => {
  const guest = await partitionedXenOnlyGuest();
  const s = await guestScratch(t);
  // A virt-customize that only leaves a mark: the proof that no appliance ran.
  const fakeBin = join(s.dir, "bin");
  await mkdir(fakeBin);
  const mark = join(s.dir, "virt-customize-ran");
  await writeFile(join(fakeBin, "virt-customize"), `#!/bin/sh\ntouch ${mark}\nexit 1\n`);
  await chmod(join(fakeBin, "virt-customize"), 0o755);
  const env = { ...s.env, PATH: `${fakeBin}:${s.env.PATH}` };

  const plan = await runCli(["bootable", "--json", "--dry-run", "--xen-to-kvm", guest], env);
  assert.equal(plan.code, 0, plan.stderr);
  const planned = (doneOf(plan.stdout, "bootable") as unknown as Report).xenToKvm!;
  const would = planned.initramfs as InitramfsOutcome;
  assert.equal(would.method, "appended");
  assert.equal(would.rebuilt, false);
  assert.ok(would.modulesAdded?.includes("virtio_blk") && would.modulesAdded.includes("virtio_pci"));
  assert.ok(would.wouldAppendBytes! > 0);
  assert.equal(planned.initramfsRebuild, null);

  const before = await sha256File(guest);
  const out = join(s.dir, "appended.raw");
  const started = Date.now();
  const r = await runCli(["bootable", "--json", "--xen-to-kvm", guest, out], env);
  const seconds = (Date.now() - started) / 1000;
  assert.equal(r.code, 0, r.stderr);
  const report = (doneOf(r.stdout, "bootable") as unknown as Report).xenToKvm!;
  const outcome = report.initramfs as InitramfsOutcome;
  t.diagnostic(`bootable: ${seconds} s in all, the append ${outcome.seconds} s`);
  assert.equal(outcome.method, "appended");
  assert.equal(outcome.rebuilt, true);
  assert.equal(outcome.verdict, "ok", outcome.reason);
  assert.deepEqual(outcome.modulesAdded, would.modulesAdded);
  assert.equal(report.initramfsRebuild, null);
  assert.ok(outcome.seconds! < 10, `the append took ${outcome.seconds} s`);
  assert.ok(seconds < 60, `bootable took ${seconds} s`);
  await assert.rejects(stat(mark), "virt-customize never ran");
  assert.ok(report.changes.some((c) => c.edit === "initramfs-append" && c.path === outcome.initramfs));
  assert.equal(await sha256File(guest), before, "the input was changed");

  const image = await initramfsOf(out, outcome.initramfs!, outcome.version);
  assert.equal(image.check.verdict, "ok", image.check.reason);
  assert.equal(image.check.drivers.virtio_blk, "module");
  assert.equal(image.check.drivers.virtio_pci, "module");
  assert.ok(image.listed.includes("scripts/init-top/ORDER"), "Debian's lsinitramfs still reads the image");

  const boot = await bootToLogin(out, { format: "raw", bus: "virtio" });
  t.diagnostic(`booted on virtio to the login prompt in ${boot.seconds} s`);
  assert.match(boot.serial, /chromogenic-bootable login:/);
});

test("--initramfs-guest-tool: the same guest rebuilt by its update-initramfs in the appliance (the fallback)", async (t) => {
  const guest = await partitionedXenOnlyGuest();
  const s = await guestScratch(t);
  const env = { ...(await libguestfsEnv()), CHROMOGENIC_STATE_DIR: s.env.CHROMOGENIC_STATE_DIR };
  const out = join(s.dir, "rebuilt.raw");
  const r = await runCli(["bootable", "--json", "--xen-to-kvm", "--initramfs-guest-tool", guest, out], env);
  assert.equal(r.code, 0, r.stderr);
  const report = (doneOf(r.stdout, "bootable") as unknown as Report).xenToKvm!;
  const outcome = report.initramfs as InitramfsOutcome;
  t.diagnostic(`rebuilt in the appliance in ${outcome.seconds} s`);
  assert.equal(outcome.method, "guest-tool");
  assert.equal(outcome.tool, "update-initramfs");
  assert.equal(outcome.rebuilt, true);
  assert.equal(outcome.verdict, "ok", outcome.reason);
  assert.equal(outcome.modulesAdded, undefined);
  const image = await initramfsOf(out, outcome.initramfs!, outcome.version);
  assert.equal(image.check.drivers.virtio_blk, "module");
  assert.ok(!image.listed.some((n) => n.startsWith("chromogenic-virtio")), "nothing appended");
});
