import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { grubBootSector, placedCoreImage, recogniseBootCode } from "../../../src/operations/boot/grub-boot-sectors.js";
import { buildCoreImage, GRUB_I386_PC_DIR } from "../../../src/operations/boot/grub-core-image.js";
import { writeMbrTable } from "../../../src/guest/partitions/mbr-writer.js";

const request = {
  table: "mbr",
  filesystem: "ext2",
  filesystemUuid: "c1ea0000-5eed-4b0b-8a55-000000000001",
  prefix: "/boot/grub",
  lvm: false,
} as const;

test("boot.img goes into sector 0 with the table kept, pointing at the core, drive check off", async () => {
  const boot = await readFile(join(GRUB_I386_PC_DIR, "boot.img"));
  const sector0 = Buffer.alloc(512);
  writeMbrTable(sector0, [{ startLba: 2048, sectors: 4096, type: 0x83, bootable: true }], 0x11223344);
  const out = grubBootSector(boot, sector0, 34);
  assert.deepEqual(out.subarray(440), sector0.subarray(440), "signature and table untouched");
  assert.equal(out.readBigUInt64LE(0x5c), 34n);
  assert.deepEqual([out[0x66], out[0x67]], [0x90, 0x90]);
  assert.deepEqual(out.subarray(0, 0x5c), boot.subarray(0, 0x5c));
  assert.deepEqual(out.subarray(0x68, 440), boot.subarray(0x68, 440));
  assert.equal(recogniseBootCode(out), "grub");
});

test("the core image from grub-mkimage: its block list follows it wherever it is placed", async () => {
  const core = await buildCoreImage(request);
  const sectors = Math.ceil(core.length / 512);
  assert.ok(sectors < 62, `a minimal core fits the 62 sectors before a partition at 63 (${sectors})`);
  const atOne = placedCoreImage(core, 1);
  assert.equal(atOne.readBigUInt64LE(500), 2n);
  assert.equal(atOne.readUInt16LE(508), sectors - 1);
  const at34 = placedCoreImage(core, 34);
  assert.equal(at34.readBigUInt64LE(500), 35n);
  assert.equal(at34.length, sectors * 512);
  assert.deepEqual(at34.subarray(512, core.length), core.subarray(512));
  assert.throws(() => placedCoreImage(Buffer.alloc(1024), 1), /block list/);
});

test("boot code is told apart: none, GRUB, syslinux, and someone else's", async () => {
  assert.equal(recogniseBootCode(Buffer.alloc(512)), "none");
  const syslinux = Buffer.alloc(512);
  (await readFile("/usr/lib/syslinux/mbr/mbr.bin")).copy(syslinux);
  assert.equal(recogniseBootCode(syslinux), "syslinux");
  const dos = Buffer.alloc(512);
  dos.write("Invalid partition table\0Error loading operating system\0Missing operating system", 0x163, "latin1");
  assert.equal(recogniseBootCode(dos), "unknown");
});
