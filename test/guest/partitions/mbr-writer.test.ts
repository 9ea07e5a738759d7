import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { open } from "node:fs/promises";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { readPartitionTable } from "../../../src/guest/partitions/read-partition-table.js";
import { chsBytes, writeMbrTable, type MbrPartitionSpec } from "../../../src/guest/partitions/mbr-writer.js";
import { makeRaw, qemuInfo, run, runOk, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

async function writeSector0(path: string, sector: Buffer): Promise<void> {
  const h = await open(path, "r+");
  try {
    await h.write(sector, 0, 512, 0);
  } finally {
    await h.close();
  }
}

async function readSector0(path: string): Promise<Buffer> {
  const h = await open(path, "r");
  try {
    const b = Buffer.alloc(512);
    await h.read(b, 0, 512, 0);
    return b;
  } finally {
    await h.close();
  }
}

const LAYOUT: MbrPartitionSpec[] = [
  { startLba: 2048, sectors: 40960, type: 0x83, bootable: true },
  { startLba: 43008, sectors: 8192, type: 0x82 },
  { startLba: 51200, sectors: 14336, type: 0x8e },
];

test("an MBR we write reads back the same through our reader, sfdisk and qemu-img", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "mbr.raw");
  await makeRaw(path, 32 * MiB);
  const sector = Buffer.alloc(512);
  const bootCode = Buffer.alloc(440, 0x90);
  bootCode.copy(sector);
  writeMbrTable(sector, LAYOUT, 0x1234abcd);
  assert.deepEqual(sector.subarray(0, 440), bootCode, "the boot code is kept");
  await writeSector0(path, sector);

  const { source } = await openImage(path);
  const table = await readPartitionTable(source, path).finally(() => source.close());
  assert.equal(table?.scheme, "mbr");
  assert.equal(table.diskId, "1234abcd");
  assert.deepEqual(
    table.partitions.map((p) => [p.number, p.offset / 512, p.size / 512, p.type, p.role]),
    [
      [1, 2048, 40960, "0x83", "filesystem"],
      [2, 43008, 8192, "0x82", "swap"],
      [3, 51200, 14336, "0x8e", "lvm"],
    ],
  );

  const dump = await runOk("sfdisk", ["--dump", path]);
  assert.match(dump, /^label: dos$/m);
  assert.match(dump, /^label-id: 0x1234abcd$/m);
  assert.match(dump, /1 : start=\s*2048, size=\s*40960, type=83, bootable$/m);
  assert.match(dump, /2 : start=\s*43008, size=\s*8192, type=82$/m);
  assert.match(dump, /3 : start=\s*51200, size=\s*14336, type=8e$/m);
  const verify = await run("sfdisk", ["--verify", path]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /No errors detected/);

  const info = await qemuInfo(path);
  assert.equal(info.format, "raw");
  assert.equal(info["virtual-size"], 32 * MiB);
});

test("the entries are byte for byte what sfdisk writes for the same table (CHS fields included)", async (t) => {
  const dir = await scratch(t);
  const ours = join(dir, "ours.raw");
  const theirs = join(dir, "theirs.raw");
  // Large enough that the last partition's end is past cylinder 1023, where CHS stops.
  const size = 9 * 2 ** 30;
  const layout: MbrPartitionSpec[] = [
    { startLba: 2048, sectors: 2097152, type: 0x83, bootable: true },
    { startLba: 2099200, sectors: 16775168, type: 0x83 },
  ];
  await makeRaw(ours, size);
  await makeRaw(theirs, size);
  const sector = Buffer.alloc(512);
  writeMbrTable(sector, layout, 0xcafe0001);
  await writeSector0(ours, sector);
  const script = [
    "label: dos",
    "label-id: 0xcafe0001",
    "start=2048, size=2097152, type=83, bootable",
    "start=2099200, size=16775168, type=83",
    "",
  ].join("\n");
  const r = await run("sh", ["-c", `sfdisk -q '${theirs}' <<'EOF'\n${script}EOF`]);
  assert.equal(r.code, 0, r.stderr);
  const theirSector = await readSector0(theirs);
  assert.deepEqual(sector.subarray(440, 512), theirSector.subarray(440, 512));
});

test("CHS addresses: the start of the disk, and the marker past cylinder 1023", () => {
  assert.deepEqual(chsBytes(0), [0, 1, 0]);
  assert.deepEqual(chsBytes(2048), [32, 33, 0]);
  assert.deepEqual(chsBytes(1024 * 255 * 63), [254, 0xff, 0xff]);
});

test("tables an MBR cannot hold are refused", () => {
  const sector = Buffer.alloc(512);
  const five = Array.from({ length: 5 }, (_, i) => ({ startLba: 2048 * (i + 1), sectors: 2048, type: 0x83 }));
  assert.throws(() => writeMbrTable(sector, five, 0), /4 primary partitions/);
  assert.throws(() => writeMbrTable(sector, [{ startLba: 2048, sectors: 2 ** 32, type: 0x83 }], 0), /2 TiB/);
  assert.throws(() => writeMbrTable(sector, [{ startLba: 0, sectors: 10, type: 0x83 }], 0), /start 0/);
  assert.throws(() => writeMbrTable(Buffer.alloc(511), [], 0), /512-byte/);
});
