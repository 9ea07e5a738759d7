import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openHostFile } from "../../../../src/operations/conversion/bounded-file.js";
import { moduleName } from "../../../../src/operations/conversion/initramfs/boot-drivers.js";
import {
  checkInitramfs,
  type InitramfsToCheck,
} from "../../../../src/operations/conversion/initramfs/check-initramfs.js";
import { scratch } from "../../../helpers/tools.js";
import { cpioArchive, debianInitramfs, VIRTIO_INITRAMFS_FILES, XEN_ONLY_INITRAMFS_FILES } from "../conversion-trees.js";

async function image(t: Parameters<typeof scratch>[0], bytes: Buffer): Promise<InitramfsToCheck["open"]> {
  const path = join(await scratch(t, "chromo-check-"), "initrd.img");
  await writeFile(path, bytes);
  return () => openHostFile(path, "ramdisk", 2 ** 30);
}

const base = {
  version: "6.1.0-18-amd64",
  guestPath: "/boot/initrd.img-6.1.0-18-amd64",
  modulesBuiltin: null,
  config: null,
};

test("module names: compressed modules and dashes", () => {
  assert.equal(moduleName("usr/lib/modules/V/kernel/drivers/block/virtio_blk.ko.zst"), "virtio_blk");
  assert.equal(moduleName("lib/modules/V/kernel/drivers/block/xen-blkfront.ko"), "xen_blkfront");
  assert.equal(moduleName("lib/virtio_pci.ko.xz"), "virtio_pci");
  assert.equal(moduleName("lib/modules/V/modules.dep"), null);
  assert.equal(moduleName("etc/virtio_blk.kops"), null);
});

test("virtio modules inside: ok; Xen front ends only: must be rebuilt, and says why", async (t) => {
  const ok = await checkInitramfs({ ...base, open: await image(t, await debianInitramfs(VIRTIO_INITRAMFS_FILES)) });
  assert.equal(ok.verdict, "ok");
  assert.equal(
    ok.reason,
    "the initramfs /boot/initrd.img-6.1.0-18-amd64 of kernel 6.1.0-18-amd64 has virtio_blk (module) and virtio_pci (module)",
  );
  assert.equal(ok.drivers.ata_piix, "module");
  assert.equal(ok.drivers.sd_mod, "built-in"); // from the modules.builtin inside
  assert.equal(ok.drivers.ahci, "missing");

  const xen = await checkInitramfs({
    ...base,
    open: await image(t, await debianInitramfs(XEN_ONLY_INITRAMFS_FILES, "xz")),
  });
  assert.equal(xen.verdict, "must-rebuild");
  assert.equal(
    xen.reason,
    "the initramfs /boot/initrd.img-6.1.0-18-amd64 of kernel 6.1.0-18-amd64 has no virtio_blk and virtio_pci, neither as a module nor built in (its disk driver is Xen's xen-blkfront): it must be rebuilt with the virtio drivers",
  );
  assert.deepEqual(xen.parts, ["cpio", "xz"]);
});

test("built in: the guest's modules.builtin or the kernel's config count; with neither, unknown", async (t) => {
  const open = await image(t, await cpioArchive({ init: "#!/bin/sh\n" }));
  const builtin = await checkInitramfs({
    ...base,
    open,
    modulesBuiltin: "kernel/drivers/block/virtio_blk.ko\nkernel/drivers/virtio/virtio_pci.ko\n",
  });
  assert.equal(builtin.verdict, "ok");
  assert.equal(builtin.drivers.virtio_blk, "built-in");
  const config = await checkInitramfs({
    ...base,
    open,
    config: "CONFIG_VIRTIO=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=m\n",
  });
  assert.equal(config.verdict, "must-rebuild");
  assert.match(config.reason, /has no virtio_blk, neither/);
  const unknown = await checkInitramfs({ ...base, open });
  assert.equal(unknown.verdict, "unknown");
  assert.match(unknown.reason, /neither modules\.builtin nor config-6\.1\.0-18-amd64 tells/);
});

test("no initramfs: ok only when the kernel has the drivers built in", async () => {
  const never = () => Promise.reject(new Error("not to be opened"));
  const none = { ...base, guestPath: null, open: never };
  const ok = await checkInitramfs({ ...none, config: "CONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_PCI=y\n" });
  assert.equal(ok.verdict, "ok");
  assert.match(ok.reason, /^kernel 6\.1\.0-18-amd64, which has no initramfs, has virtio_blk \(built-in\)/);
  const rebuild = await checkInitramfs({ ...none, config: "CONFIG_VIRTIO_BLK=m\n" });
  assert.equal(rebuild.verdict, "must-rebuild");
});

test("an image the kernel could not unpack must be rebuilt; one we could not open is unknown", async (t) => {
  const corrupt = await checkInitramfs({ ...base, open: await image(t, Buffer.from("not an initramfs at all")) });
  assert.equal(corrupt.verdict, "must-rebuild");
  assert.match(corrupt.reason, /starts neither a cpio archive nor a compressed one/);
  const missing = await checkInitramfs({ ...base, open: () => openHostFile("/nonexistent/initrd", "ramdisk", 1) });
  assert.equal(missing.verdict, "unknown");
  assert.equal(missing.reason, "ramdisk /nonexistent/initrd: does not exist");
});
