/**
 * The Xen test guests (test/helpers/xen-guests.ts) are what they claim to be, checked with the host's own
 * tools (blkid, sfdisk, a read-only loop mount, lsinitramfs) rather than with the code they will test:
 * layout and boot code, the Xen names in fstab and the console, where the kernel and initramfs are, and what
 * each initramfs holds. The Xen-only one is also booted on virtio, where it must fail to find its root.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdtemp, open, readFile, readdir, readlink, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { bootToLogin } from "../helpers/boot-in-qemu.js";
import { isRoot } from "../helpers/guest-images.js";
import { run, runOk, scratch } from "../helpers/tools.js";
import {
  XEN_GUEST_HOSTNAME,
  XEN_ONLY_INITRAMFS_MODULES,
  XEN_ROOT_DEVICE,
  xenBareExt4Guest,
  xenBareXfsGuest,
  xenOnlyInitramfsGuest,
  xenPygrubGuest,
  type XenGuest,
} from "../helpers/xen-guests.js";

const skip = !(await isRoot()) ? "needs root (mmdebstrap builds the guests; they are loop-mounted to be read)" : false;
const BUILD = { skip, timeout: 15 * 60_000 };
const MiB = 2 ** 20;

/** `blkid -p` of the whole file (or at `offset`): the probed superblock or partition table, as key → value. */
async function probe(path: string, offset = 0): Promise<Record<string, string>> {
  const r = await run("blkid", ["-p", "-o", "export", ...(offset ? ["-O", String(offset)] : []), path]);
  return Object.fromEntries(
    r.stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** The guest's root mounted read-only (XFS without log recovery, which would write) while `fn` runs. */
async function withRoot<T>(t: test.TestContext, guest: XenGuest, fn: (root: string) => Promise<T>): Promise<T> {
  const dir = await scratch(t, "chromo-xen-guest-");
  const mnt = await mkdtemp(join(dir, "root-"));
  const offset = guest.options.layout === "pygrub" ? MiB : 0;
  const opts = ["ro", "loop", `offset=${offset}`, ...(guest.options.fs === "xfs" ? ["norecovery"] : [])];
  await runOk("mount", ["-o", opts.join(","), guest.disk, mnt]);
  try {
    return await fn(mnt);
  } finally {
    await runOk("umount", [mnt]);
    await rm(mnt, { recursive: true, force: true });
  }
}

/** The files of an initramfs image, by lsinitramfs (initramfs-tools-core). */
async function initramfsFiles(image: string): Promise<string[]> {
  return (await runOk("lsinitramfs", [image])).split("\n").filter(Boolean);
}

const hasModule = (files: readonly string[], name: string) => files.some((f) => f.endsWith(`/${name}.ko`));

/** Checks every guest shares: its identity, the Xen root and console names, no GRUB 2, the drivers in /lib/modules. */
async function checkXenRoot(root: string, guest: XenGuest): Promise<void> {
  const read = (p: string) => readFile(join(root, p), "utf8");
  assert.equal(await read(guest.marker.path), guest.marker.content);
  assert.equal(await read("/etc/hostname"), `${XEN_GUEST_HOSTNAME}\n`);
  assert.match(await read("/etc/os-release"), /^VERSION_ID="12"$/m);
  const fstabRoot = (await read("/etc/fstab")).split("\n").find((l) => /^\S+\s+\/\s/.test(l));
  assert.equal(fstabRoot?.split(/\s+/).slice(0, 3).join(" "), `${XEN_ROOT_DEVICE} / ${guest.options.fs}`);
  const getty = join(root, "etc/systemd/system/getty.target.wants/serial-getty@hvc0.service");
  assert.ok((await lstat(getty)).isSymbolicLink());
  assert.equal(await readlink(getty), "/lib/systemd/system/serial-getty@.service");
  assert.ok((await stat(join(root, "lib/systemd/system/serial-getty@.service"))).isFile(), "the getty unit exists");
  for (const absent of ["boot/grub/grub.cfg", "usr/sbin/grub-mkconfig", "usr/lib/grub", "etc/initramfs-tools-xen-only"])
    assert.equal(await stat(join(root, absent)).catch(() => null), null, `${absent} is not in a Xen guest`);
  // The drivers a conversion adds to the initramfs are in the guest, whatever its initramfs holds.
  const modules = (await runOk("find", [join(root, "lib/modules", guest.kernelVersion), "-name", "*.ko"])).split("\n");
  for (const m of [
    "xen-blkfront",
    "xen-netfront",
    "virtio_blk",
    "virtio_pci",
    "virtio_net",
    "ahci",
    "ata_piix",
    "ext4",
    "xfs",
  ])
    assert.ok(hasModule(modules, m), `module ${m} is in /lib/modules/${guest.kernelVersion}`);
}

/** The MBR's boot code area (bytes 0-439) is all zeros: nothing would boot this disk but pygrub. */
async function bootCodeIsEmpty(disk: string): Promise<boolean> {
  const h = await open(disk, "r");
  try {
    const { buffer } = await h.read({ buffer: Buffer.alloc(440), position: 0 });
    return buffer.every((b) => b === 0);
  } finally {
    await h.close();
  }
}

async function checkBare(t: test.TestContext, guest: XenGuest): Promise<void> {
  if (guest.buildSeconds > 0) t.diagnostic(`${guest.name} built in ${guest.buildSeconds.toFixed(0)} s`);
  const found = await probe(guest.disk);
  assert.equal(found.PTTYPE, undefined, "no partition table");
  assert.equal(found.TYPE, guest.options.fs, "the file is the filesystem itself");
  assert.equal(found.UUID, guest.rootUuid);
  assert.equal((await stat(guest.disk)).size, 512 * MiB);
  t.diagnostic(`${guest.name}: ${(await runOk("du", ["-m", guest.disk])).split("\t")[0]} MiB allocated`);
  // EKI/ERI: a bzImage and an initramfs beside the disk ("HdrS" is the Linux boot protocol's signature).
  const kernel = await readFile(guest.kernel!);
  assert.equal(kernel.subarray(0x202, 0x206).toString("latin1"), "HdrS", `${guest.kernel} is a bzImage`);
  await withRoot(t, guest, async (root) => {
    await checkXenRoot(root, guest);
    assert.deepEqual(await readdir(join(root, "boot")), [], "the guest's /boot is empty");
    for (const link of ["vmlinuz", "initrd.img"])
      assert.equal(await lstat(join(root, link)).catch(() => null), null, `no /${link}`);
  });
}

test("(a) the bare ext4 Xen root: no partition table, kernel and initramfs outside", BUILD, async (t) => {
  const guest = await xenBareExt4Guest();
  await checkBare(t, guest);
  const files = await initramfsFiles(guest.initrd!);
  for (const m of ["virtio_blk", "virtio_pci", "xen-blkfront", "ext4"])
    assert.ok(hasModule(files, m), `ERI holds ${m}`);
});

test("(b) the pygrub Xen disk: MBR, one partition from 1 MiB, only a menu.lst, no boot code", BUILD, async (t) => {
  const guest = await xenPygrubGuest();
  if (guest.buildSeconds > 0) t.diagnostic(`${guest.name} built in ${guest.buildSeconds.toFixed(0)} s`);
  assert.equal(guest.kernel, undefined);
  assert.equal((await probe(guest.disk)).PTTYPE, "dos");
  const table = JSON.parse(await runOk("sfdisk", ["--json", guest.disk])) as {
    partitiontable: { partitions: { start: number; type: string; bootable?: boolean }[] };
  };
  assert.deepEqual(
    table.partitiontable.partitions.map((p) => [p.start, p.type, p.bootable ?? false]),
    [[2048, "83", false]],
  );
  assert.ok(await bootCodeIsEmpty(guest.disk), "no boot code in the MBR");
  const fs = await probe(guest.disk, MiB);
  assert.equal(fs.TYPE, "ext4");
  assert.equal(fs.UUID, guest.rootUuid);
  await withRoot(t, guest, async (root) => {
    await checkXenRoot(root, guest);
    const v = guest.kernelVersion;
    assert.deepEqual((await readdir(join(root, "boot/grub"))).sort(), ["menu.lst"]);
    const menu = await readFile(join(root, "boot/grub/menu.lst"), "utf8");
    assert.match(menu, /^\troot \(hd0,0\)$/m);
    assert.match(menu, new RegExp(`^\\tkernel /boot/vmlinuz-${v} root=${XEN_ROOT_DEVICE} ro console=hvc0$`, "m"));
    assert.match(menu, new RegExp(`^\\tinitrd /boot/initrd.img-${v}$`, "m"));
    for (const f of [`vmlinuz-${v}`, `initrd.img-${v}`]) assert.ok((await stat(join(root, "boot", f))).size > MiB);
    const files = await initramfsFiles(join(root, "boot", `initrd.img-${v}`));
    assert.ok(hasModule(files, "virtio_blk") && hasModule(files, "xen-blkfront"));
  });
});

test("(c) the bare XFS Xen root", BUILD, async (t) => {
  const guest = await xenBareXfsGuest();
  await checkBare(t, guest);
  const files = await initramfsFiles(guest.initrd!);
  for (const m of ["xfs", "virtio_blk", "xen-blkfront"]) assert.ok(hasModule(files, m), `ERI holds ${m}`);
});

test("(d) the Xen-only initramfs holds the Xen frontends and no virtio, IDE or SATA driver", BUILD, async (t) => {
  const guest = await xenOnlyInitramfsGuest();
  await checkBare(t, guest);
  const files = await initramfsFiles(guest.initrd!);
  for (const m of XEN_ONLY_INITRAMFS_MODULES) assert.ok(hasModule(files, m), `ERI holds ${m}`);
  for (const m of ["virtio_blk", "virtio_pci", "virtio_scsi", "virtio_net", "ahci", "ata_piix", "sd_mod"])
    assert.ok(!hasModule(files, m), `ERI must not hold ${m}`);
  await withRoot(t, guest, async (root) => {
    const conf = await readFile(join(root, "etc/initramfs-tools/initramfs.conf"), "utf8");
    assert.match(conf, /^MODULES=list$/m);
    const listed = (await readFile(join(root, "etc/initramfs-tools/modules"), "utf8"))
      .split("\n")
      .filter((l) => l && !l.startsWith("#"));
    assert.deepEqual(listed, [...XEN_ONLY_INITRAMFS_MODULES]);
  });
});

test("(d) on virtio the Xen-only initramfs cannot find its root", { ...BUILD, timeout: 8 * 60_000 }, async (t) => {
  const guest = await xenOnlyInitramfsGuest();
  // rootdelay: initramfs-tools waits 180 s for the root device unless told otherwise.
  const append = "root=/dev/vda ro console=ttyS0,115200 rootdelay=5";
  await assert.rejects(
    bootToLogin(guest.disk, { direct: { kernel: guest.kernel!, initrd: guest.initrd!, append }, signal: t.signal }),
    (e: Error) => {
      assert.match(e.message, /no login prompt: the initramfs gave up waiting for the root filesystem/);
      assert.match(e.message, /\/dev\/vda does not exist/);
      return true;
    },
  );
});
