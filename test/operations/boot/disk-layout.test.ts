import { test } from "node:test";
import assert from "node:assert/strict";
import { planLayout, type InputDiskFacts } from "../../../src/operations/boot/disk-layout.js";
import { GPT_TYPES } from "../../../src/guest/partitions/gpt-writer.js";
import { writeMbrTable } from "../../../src/guest/partitions/mbr-writer.js";
import type { Partition, PartitionTable } from "../../../src/guest/partitions/partition.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const CORE = 60; // sectors: a core image of 30 KiB

function bare(size: number): InputDiskFacts {
  return { where: "in.img", size, table: null, sector0: Buffer.alloc(512) };
}

function mbrDisk(size: number, partitions: Array<Pick<Partition, "number" | "offset" | "size">>): InputDiskFacts {
  const sector0 = Buffer.alloc(512);
  writeMbrTable(
    sector0,
    partitions.map((p) => ({ startLba: p.offset / 512, sectors: p.size / 512, type: 0x83 })),
    0x0badf00d,
  );
  const table: PartitionTable = {
    scheme: "mbr",
    sectorSize: 512,
    diskId: "0badf00d",
    partitions: partitions.map((p) => ({ ...p, type: "0x83", role: "filesystem" })),
  };
  return { where: "in.img", size, table, sector0 };
}

function gptDisk(size: number, partitions: Array<Pick<Partition, "number" | "offset" | "size"> & Partial<Partition>>) {
  const table: PartitionTable = {
    scheme: "gpt",
    sectorSize: 512,
    diskId: "8a1c4b52-3e0f-4d6a-9b7c-0123456789ab",
    partitions: partitions.map((p) => ({
      type: GPT_TYPES.linuxFilesystem,
      role: "filesystem" as const,
      partUuid: `11111111-2222-4333-8444-55555555555${p.number}`,
      ...p,
    })),
  };
  return { where: "in.img", size, table, sector0: Buffer.alloc(512) };
}

test("a bare filesystem: MBR, one bootable Linux partition from 1 MiB, core image in the gap", () => {
  const layout = planLayout(bare(512 * MiB), { coreSectors: CORE });
  assert.equal(layout.mode, "new");
  assert.equal(layout.loader, "grub");
  assert.equal(layout.table, "mbr");
  assert.equal(layout.diskSize, 513 * MiB);
  assert.deepEqual(layout.copies, [{ from: 0, to: MiB, length: 512 * MiB }]);
  assert.deepEqual(layout.mbr?.slots, [{ startLba: 2048, sectors: (512 * MiB) / 512, type: 0x83, bootable: true }]);
  assert.equal(layout.coreLba, 1);
  assert.equal(layout.coreSectorsAvailable, 2047);
});

test("a bare filesystem with --size: the partition takes the disk, and grows", () => {
  const layout = planLayout(bare(512 * MiB), { coreSectors: CORE, size: 2 * GiB });
  assert.equal(layout.diskSize, 2 * GiB);
  assert.deepEqual(layout.partitions, [
    { number: 1, offset: MiB, size: 2 * GiB - MiB, role: "filesystem", grownFrom: 512 * MiB },
  ]);
});

test("a bare filesystem on GPT: root in partition 1 from 1 MiB, a BIOS boot partition before it", () => {
  const layout = planLayout(bare(512 * MiB), { coreSectors: CORE, table: "gpt" });
  assert.equal(layout.table, "gpt");
  assert.equal(layout.diskSize, 514 * MiB);
  const [root, bios] = layout.gpt!.partitions;
  assert.deepEqual([root!.number, root!.firstLba, root!.type], [1, 2048, GPT_TYPES.linuxFilesystem]);
  assert.equal(root!.lastLba, (514 * MiB) / 512 - 34);
  assert.deepEqual([bios!.number, bios!.firstLba, bios!.lastLba, bios!.type], [2, 34, 2047, GPT_TYPES.biosBoot]);
  assert.equal(layout.coreLba, 34);
  assert.equal(layout.coreSectorsAvailable, 2014);
});

test("a filesystem that does not fit --size is a usage error naming both sizes", () => {
  assert.throws(
    () => planLayout(bare(512 * MiB), { coreSectors: CORE, size: 256 * MiB }),
    (e: Error & { code?: string }) =>
      e.code === "EUSAGE" && /needs a disk of at least 513 MiB/.test(e.message) && /256 MiB/.test(e.message),
  );
});

test("an MBR disk with a 1 MiB gap is kept: signature, slots, copied whole; the last partition grows", () => {
  const input = mbrDisk(64 * MiB, [
    { number: 1, offset: MiB, size: 31 * MiB },
    { number: 2, offset: 32 * MiB, size: 32 * MiB },
  ]);
  const same = planLayout(input, { coreSectors: CORE });
  assert.equal(same.mode, "kept");
  assert.equal(same.diskSize, 64 * MiB);
  assert.deepEqual(same.copies, [{ from: 0, to: 0, length: 64 * MiB }]);
  assert.equal(same.mbr?.signature, 0x0badf00d);
  // No partition was active: the first filesystem is made so, for BIOSes that look.
  assert.equal(same.mbr?.slots[0]?.bootable, true);

  const grown = planLayout(input, { coreSectors: CORE, size: 128 * MiB });
  assert.equal(grown.mbr?.slots[1]?.sectors, (96 * MiB) / 512);
  assert.deepEqual(grown.partitions[1], {
    number: 2,
    offset: 32 * MiB,
    size: 96 * MiB,
    role: "filesystem",
    grownFrom: 32 * MiB,
  });
  assert.throws(
    () => planLayout(input, { coreSectors: CORE, size: 32 * MiB }),
    /its partitions need a disk of at least 64\.0 MiB/,
  );
});

test("an MBR disk whose first partition starts at sector 63: GRUB if its core fits, else extlinux", () => {
  const input = mbrDisk(64 * MiB, [{ number: 1, offset: 63 * 512, size: 32 * MiB }]);
  const grub = planLayout(input, { coreSectors: 57 });
  assert.deepEqual([grub.loader, grub.coreLba, grub.coreSectorsAvailable], ["grub", 1, 62]);
  // An LVM or btrfs /boot makes GRUB's core too large for the 62 sectors: extlinux needs none of them.
  assert.equal(planLayout(input, { coreSectors: 71 }).loader, "extlinux");
});

test("a GPT disk is kept: ids and names stay, a BIOS boot partition is added in the gap, the backup moves", () => {
  const input = gptDisk(64 * MiB + 2 * MiB, [{ number: 1, offset: MiB, size: 64 * MiB, name: "root" }]);
  const layout = planLayout(input, { coreSectors: CORE, size: 128 * MiB });
  assert.equal(layout.gpt?.diskGuid, input.table.diskId);
  const [root, bios] = layout.gpt!.partitions;
  assert.deepEqual([root!.partUuid, root!.name], ["11111111-2222-4333-8444-555555555551", "root"]);
  assert.equal(root!.lastLba, (128 * MiB) / 512 - 34);
  assert.deepEqual([bios!.number, bios!.firstLba, bios!.lastLba], [2, 34, 2047]);
  assert.deepEqual(layout.copies, [{ from: 0, to: 0, length: 65 * MiB }], "the old backup GPT is not copied");
  assert.equal(layout.coreLba, 34);
});

test("a GPT disk's own BIOS boot partition is used; --table of the other kind is refused", () => {
  const input = gptDisk(66 * MiB, [
    { number: 1, offset: 2 * MiB, size: 63 * MiB },
    { number: 2, offset: MiB, size: MiB, role: "bios-boot", type: GPT_TYPES.biosBoot },
  ]);
  const layout = planLayout(input, { coreSectors: CORE });
  assert.equal(layout.coreLba, 2048);
  assert.equal(layout.coreSectorsAvailable, 2048);
  assert.equal(layout.gpt!.partitions.length, 2);
  assert.throws(
    () => planLayout(input, { coreSectors: CORE, table: "mbr" }),
    (e: Error & { code?: string }) => e.code === "EUSAGE" && /GPT partition table, which is kept/.test(e.message),
  );
});

test("an MBR larger than 2 TiB is refused for a new layout, pointing at GPT", () => {
  assert.throws(() => planLayout(bare(GiB), { coreSectors: CORE, size: 3 * 2 ** 40 }), /--table gpt/);
});
