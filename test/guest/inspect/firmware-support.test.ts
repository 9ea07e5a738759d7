/**
 * The boot mode a disk is registered with decides whether it starts at all (an EC2 AMI registered uefi whose
 * disk has only a BIOS loader never boots), so each layout is checked: MBR with and without boot code, GPT with an
 * EFI system partition, with a BIOS boot partition, with both, with the legacy-BIOS-bootable attribute, and no
 * table at all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { firmwareSupport } from "../../../src/guest/inspect/firmware-support.js";
import { buildGpt, GPT_LEGACY_BIOS_BOOTABLE, GPT_TYPES } from "../../../src/guest/partitions/gpt-writer.js";
import { writeMbrTable } from "../../../src/guest/partitions/mbr-writer.js";
import { randomGuid } from "../../../src/guest/partitions/guid.js";
import { MemoryInput } from "../../helpers/memory-input.js";

const SECTORS = 16 * 2048; // 16 MiB
const ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const BOOT_CODE = Buffer.from([0xeb, 0x63, 0x90, 0x10]);

async function support(disk: Buffer): Promise<string> {
  const { source } = await openImage(new MemoryInput(disk, "disk.raw"), { format: "raw" });
  try {
    return await firmwareSupport(source, "disk.raw");
  } finally {
    await source.close();
  }
}

function gptDisk(parts: { type: string; attributes?: bigint }[], bootCode?: Buffer): Buffer {
  const disk = Buffer.alloc(SECTORS * 512);
  const layout = buildGpt(
    SECTORS,
    parts.map((p, i) => ({
      number: i + 1,
      firstLba: 2048 + i * 4096,
      lastLba: 2048 + i * 4096 + 4095,
      type: p.type,
      partUuid: randomGuid(),
      ...(p.attributes !== undefined ? { attributes: p.attributes } : {}),
    })),
    randomGuid(),
    bootCode,
  );
  layout.head.copy(disk, 0);
  layout.tail.copy(disk, layout.tailOffset);
  return disk;
}

function mbrDisk(type: number, bootCode?: Buffer): Buffer {
  const disk = Buffer.alloc(SECTORS * 512);
  const sector = disk.subarray(0, 512);
  bootCode?.copy(sector, 0);
  writeMbrTable(sector, [{ startLba: 2048, sectors: 8192, type, bootable: true }], 0x1234abcd);
  return disk;
}

test("MBR: boot code makes it a BIOS disk; an 0xEF partition adds UEFI; neither is unknown", async () => {
  assert.equal(await support(mbrDisk(0x83, BOOT_CODE)), "bios");
  assert.equal(await support(mbrDisk(0x83)), "unknown");
  assert.equal(await support(mbrDisk(0xef)), "uefi");
  assert.equal(await support(mbrDisk(0xef, BOOT_CODE)), "both");
});

test("GPT: an EFI system partition, a BIOS boot partition, both, and the legacy-BIOS attribute", async () => {
  const linux = { type: GPT_TYPES.linuxFilesystem };
  assert.equal(await support(gptDisk([{ type: ESP }, linux])), "uefi");
  assert.equal(await support(gptDisk([{ type: GPT_TYPES.biosBoot }, linux], BOOT_CODE)), "bios");
  assert.equal(await support(gptDisk([{ type: GPT_TYPES.biosBoot }, { type: ESP }, linux], BOOT_CODE)), "both");
  // A BIOS boot partition without boot code in the protective MBR: a BIOS has nothing to run.
  assert.equal(await support(gptDisk([{ type: GPT_TYPES.biosBoot }, linux])), "unknown");
  assert.equal(
    await support(gptDisk([{ type: GPT_TYPES.linuxFilesystem, attributes: GPT_LEGACY_BIOS_BOOTABLE }], BOOT_CODE)),
    "bios",
  );
  // Boot code but nothing it could load from.
  assert.equal(await support(gptDisk([linux], BOOT_CODE)), "unknown");
});

test("a disk without a partition table is unknown", async () => {
  assert.equal(await support(Buffer.alloc(SECTORS * 512)), "unknown");
});
