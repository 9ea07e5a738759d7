import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { open } from "node:fs/promises";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { readPartitionTable } from "../../../src/guest/partitions/read-partition-table.js";
import {
  buildGpt,
  GPT_LEGACY_BIOS_BOOTABLE,
  GPT_TYPES,
  type GptPartitionSpec,
} from "../../../src/guest/partitions/gpt-writer.js";
import { guidBytes, formatGuid, randomGuid } from "../../../src/guest/partitions/guid.js";
import { makeRaw, qemuInfo, run, runOk, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;
const DISK_GUID = "8a1c4b52-3e0f-4d6a-9b7c-0123456789ab";
const ROOT_GUID = "11111111-2222-4333-8444-555555555555";
const BIOS_GUID = "66666666-7777-4888-8999-aaaaaaaaaaaa";

async function writeGpt(path: string, diskSectors: number, partitions: GptPartitionSpec[], bootCode?: Buffer) {
  const gpt = buildGpt(diskSectors, partitions, DISK_GUID, bootCode);
  const h = await open(path, "r+");
  try {
    await h.write(gpt.head, 0, gpt.head.length, 0);
    await h.write(gpt.tail, 0, gpt.tail.length, gpt.tailOffset);
  } finally {
    await h.close();
  }
}

const SIZE = 64 * MiB;
const SECTORS = SIZE / 512;
const LAYOUT: GptPartitionSpec[] = [
  {
    number: 1,
    firstLba: 4096,
    lastLba: SECTORS - 34,
    type: GPT_TYPES.linuxFilesystem,
    partUuid: ROOT_GUID,
    name: "root",
    attributes: GPT_LEGACY_BIOS_BOOTABLE,
  },
  { number: 2, firstLba: 2048, lastLba: 4095, type: GPT_TYPES.biosBoot, partUuid: BIOS_GUID, name: "bios boot" },
];

test("a GPT we write reads back the same through our reader, sfdisk, sgdisk and qemu-img", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "gpt.raw");
  await makeRaw(path, SIZE);
  await writeGpt(path, SECTORS, LAYOUT, Buffer.alloc(440, 0xeb));

  const { source } = await openImage(path);
  const table = await readPartitionTable(source, path).finally(() => source.close());
  assert.equal(table?.scheme, "gpt");
  assert.equal(table.diskId, DISK_GUID);
  assert.equal(table.usedBackupGpt, undefined);
  assert.deepEqual(
    table.partitions.map((p) => [p.number, p.offset / 512, p.size / 512, p.role, p.partUuid, p.name, p.attributes]),
    [
      [1, 4096, SECTORS - 34 - 4096 + 1, "filesystem", ROOT_GUID, "root", "0000000000000004"],
      [2, 2048, 2048, "bios-boot", BIOS_GUID, "bios boot", undefined],
    ],
  );

  const dump = await runOk("sfdisk", ["--dump", path]);
  assert.match(dump, /^label: gpt$/m);
  assert.match(dump, new RegExp(`^label-id: ${DISK_GUID}$`, "mi"));
  assert.match(dump, /^first-lba: 34$/m);
  assert.match(dump, new RegExp(`^last-lba: ${SECTORS - 34}$`, "m"));
  assert.match(
    dump,
    new RegExp(
      `1 : start=\\s*4096, size=\\s*${SECTORS - 34 - 4096 + 1}, type=${GPT_TYPES.linuxFilesystem}, ` +
        `uuid=${ROOT_GUID}, name="root", attrs="LegacyBIOSBootable"`,
      "i",
    ),
  );
  assert.match(
    dump,
    new RegExp(
      `2 : start=\\s*2048, size=\\s*2048, type=${GPT_TYPES.biosBoot}, uuid=${BIOS_GUID}, name="bios boot"`,
      "i",
    ),
  );
  const verify = await run("sgdisk", ["--verify", path]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /No problems found/);

  const info = await qemuInfo(path);
  assert.equal(info.format, "raw");
  assert.equal(info["virtual-size"], SIZE);

  // The protective MBR: boot code kept, one 0xEE entry from LBA 1 over the disk.
  const h = await open(path, "r");
  const mbr = Buffer.alloc(512);
  await h.read(mbr, 0, 512, 0).finally(() => h.close());
  assert.deepEqual(mbr.subarray(0, 440), Buffer.alloc(440, 0xeb));
  assert.equal(mbr[446 + 4], 0xee);
  assert.equal(mbr.readUInt32LE(446 + 8), 1);
  assert.equal(mbr.readUInt32LE(446 + 12), SECTORS - 1);
});

test("the backup copy at the disk's end is complete: with the primary destroyed, the same table", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "gpt.raw");
  await makeRaw(path, SIZE);
  await writeGpt(path, SECTORS, LAYOUT);
  const h = await open(path, "r+");
  await h.write(Buffer.alloc(512, 0x55), 0, 512, 512).finally(() => h.close());
  const { source } = await openImage(path);
  const table = await readPartitionTable(source, path).finally(() => source.close());
  assert.equal(table?.usedBackupGpt, true);
  assert.deepEqual(
    table.partitions.map((p) => [p.number, p.offset / 512, p.partUuid]),
    [
      [1, 4096, ROOT_GUID],
      [2, 2048, BIOS_GUID],
    ],
  );
});

test("GUIDs: text and on-disk bytes round-trip; random ones are version 4", () => {
  assert.equal(formatGuid(guidBytes(GPT_TYPES.biosBoot)), GPT_TYPES.biosBoot);
  // "Hah!IdontNeedEFI": the BIOS boot type's bytes, as GRUB chose them.
  assert.equal(guidBytes(GPT_TYPES.biosBoot).toString("latin1"), "Hah!IdontNeedEFI");
  const g = randomGuid();
  assert.match(g, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(formatGuid(guidBytes(g)), g);
});

test("layouts a GPT cannot hold are refused", () => {
  const p = (number: number, firstLba: number, lastLba: number): GptPartitionSpec => ({
    number,
    firstLba,
    lastLba,
    type: GPT_TYPES.linuxFilesystem,
    partUuid: randomGuid(),
  });
  assert.throws(() => buildGpt(SECTORS, [p(1, 33, 100)], DISK_GUID), /outside 34/);
  assert.throws(() => buildGpt(SECTORS, [p(1, 2048, SECTORS - 33)], DISK_GUID), /outside/);
  assert.throws(() => buildGpt(SECTORS, [p(1, 2048, 4095), p(2, 4095, 5000)], DISK_GUID), /overlap/);
  assert.throws(() => buildGpt(SECTORS, [p(1, 2048, 4095), p(1, 5000, 6000)], DISK_GUID), /given twice/);
  assert.throws(() => buildGpt(60, [], DISK_GUID), /too small/);
});
