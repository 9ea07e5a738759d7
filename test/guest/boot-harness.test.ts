/**
 * The boot harness (test/helpers/boot-in-qemu.ts) is itself proved here before the conversion and bootable-disk
 * proofs lean on it: a Debian 12 disk made bootable by syslinux (BIOS) and a stand-alone GRUB (UEFI), both
 * from Debian's packages, reaches its login prompt under TCG on each bus and firmware the proofs use, in each
 * image format they write; a disk without boot code, a boot that outlasts its limit and an aborted boot are
 * each reported with what the console showed, and leave no qemu behind.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootToLogin, type BootOptions } from "../helpers/boot-in-qemu.js";
import { bootTestDisk } from "../helpers/boot-test-disk.js";
import { isRoot } from "../helpers/guest-images.js";
import { XEN_GUEST_HOSTNAME, xenBareExt4Guest, type XenGuest } from "../helpers/xen-guests.js";
import { qemuImg, run } from "../helpers/tools.js";

const skip = !(await isRoot()) ? "needs root (mmdebstrap builds the guest)" : false;

let dir = "";
let guest: XenGuest;
/** The Xen guest's root behind a syslinux + GRUB EFI boot partition, its own kernel and initramfs. */
let disk = "";

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-boot-harness-"));
  guest = await xenBareExt4Guest();
  disk = join(dir, "boot-test.raw");
  await bootTestDisk({
    rootFs: guest.disk,
    kernel: guest.kernel!,
    initrd: guest.initrd!,
    append: `root=UUID=${guest.rootUuid} ro console=ttyS0,115200`,
    output: disk,
    scratchDir: dir,
  });
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

const sha256 = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

/** qemu processes whose command line names `path` (none may outlive a boot). */
async function qemusUsing(path: string): Promise<string[]> {
  const r = await run("pgrep", ["-af", "qemu-system-x86_64"]);
  return r.stdout.split("\n").filter((l) => l.includes(path));
}

const TCG_BOOT = { timeout: 8 * 60_000 };

async function bootsToLogin(t: test.TestContext, image: string, options: BootOptions): Promise<void> {
  const serialLog = join(dir, "serial.log");
  const result = await bootToLogin(image, { ...options, signal: t.signal, serialLog });
  assert.match(result.serial, new RegExp(`${XEN_GUEST_HOSTNAME} login: `));
  assert.equal(await readFile(serialLog, "latin1"), result.serial, "the serial log holds the console");
  t.diagnostic(
    `${options.bus ?? "virtio"} ${options.format ?? "raw"} ${options.firmware ?? "bios"}: login prompt after ${result.seconds.toFixed(1)} s under TCG`,
  );
  assert.deepEqual(await qemusUsing(image), [], "qemu is gone once the prompt is seen");
}

test(
  "a syslinux disk boots to its login prompt on virtio under TCG and is not modified",
  { skip, ...TCG_BOOT },
  async (t) => {
    if (guest.buildSeconds > 0) t.diagnostic(`Xen guest built in ${guest.buildSeconds.toFixed(0)} s`);
    const before = await sha256(disk);
    await bootsToLogin(t, disk, {});
    assert.equal(await sha256(disk), before, "the booted disk is unchanged (snapshot=on)");
  },
);

test("the same disk as qcow2 boots on SATA (ICH9 AHCI)", { skip, ...TCG_BOOT }, async (t) => {
  const qcow2 = join(dir, "boot-test.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", disk, qcow2);
  await bootsToLogin(t, qcow2, { format: "qcow2", bus: "sata" });
});

test("the same disk as VMDK boots on IDE (PIIX)", { skip, ...TCG_BOOT }, async (t) => {
  const vmdk = join(dir, "boot-test.vmdk");
  await qemuImg("convert", "-f", "raw", "-O", "vmdk", disk, vmdk);
  await bootsToLogin(t, vmdk, { format: "vmdk", bus: "ide" });
});

test("the same disk boots under UEFI (OVMF) through its \\EFI\\BOOT\\BOOTX64.EFI", { skip, ...TCG_BOOT }, async (t) => {
  await bootsToLogin(t, disk, { firmware: "uefi" });
});

test("a direct kernel boot of the bare Xen root reaches the login prompt", { skip, ...TCG_BOOT }, async (t) => {
  await bootsToLogin(t, guest.disk, {
    direct: { kernel: guest.kernel!, initrd: guest.initrd!, append: "root=/dev/vda ro console=ttyS0,115200" },
  });
});

for (const [firmware, meaning, seen] of [
  ["bios", "SeaBIOS found nothing to boot", "No bootable device"],
  ["uefi", "OVMF found nothing to boot and started its shell", "BdsDxe: failed to load"],
] as const)
  test(
    `a disk without boot code fails at once under ${firmware}, with what the console showed`,
    { skip, ...TCG_BOOT },
    async (t) => {
      const started = Date.now();
      await assert.rejects(bootToLogin(guest.disk, { firmware, signal: t.signal }), (e: Error) => {
        assert.match(e.message, new RegExp(`no login prompt: ${meaning}`));
        assert.match(e.message, new RegExp(`last 40 lines of the serial console:\n[^]*${seen}`));
        assert.ok(e.message.includes(guest.disk), "the message names the disk");
        return true;
      });
      t.diagnostic(`${firmware}: reported after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.deepEqual(await qemusUsing(guest.disk), []);
    },
  );

test("a boot that outlasts its limit is killed and reported as a timeout", { skip, ...TCG_BOOT }, async (t) => {
  await assert.rejects(bootToLogin(disk, { timeoutMs: 4000, signal: t.signal }), (e: Error) => {
    assert.match(e.message, /no login prompt: timed out \(limit 4 s\) after \d+ s; last 40 lines/);
    return true;
  });
  assert.deepEqual(await qemusUsing(disk), []);
});

test("an aborted boot kills qemu and says so", { skip, ...TCG_BOOT }, async () => {
  const controller = new AbortController();
  const booting = bootToLogin(disk, { signal: controller.signal });
  setTimeout(() => controller.abort(), 1500);
  await assert.rejects(booting, /no login prompt: the test was aborted/);
  assert.deepEqual(await qemusUsing(disk), []);
});

test("a missing disk is named before qemu starts", async () => {
  await assert.rejects(
    bootToLogin("/nonexistent/disk.raw"),
    /the disk to boot is missing \(\/nonexistent\/disk\.raw\)/,
  );
});

test("a missing qemu is named with the package that brings it", { skip }, async (t) => {
  const path = process.env.PATH;
  process.env.PATH = "/nonexistent";
  t.after(() => void (process.env.PATH = path));
  await assert.rejects(bootToLogin(disk), /qemu-system-x86_64 is not installed \(Debian package qemu-system-x86/);
});
