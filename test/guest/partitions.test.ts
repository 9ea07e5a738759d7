import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { open, readFile, writeFile } from "node:fs/promises";
import { openImage } from "../../src/formats/engine/open-image.js";
import { convertFile } from "../../src/formats/engine/convert.js";
import { CorruptImageError } from "../../src/formats/errors.js";
import { readPartitionTable } from "../../src/guest/partitions/read-partition-table.js";
import type { PartitionTable } from "../../src/guest/partitions/partition.js";
import { makeRaw, run, runOk, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;

interface SfdiskJson {
  partitiontable: {
    label: string;
    id: string;
    partitions: Array<{ node: string; start: number; size: number; type: string; uuid?: string; name?: string }>;
  };
}

async function sfdiskImage(path: string, size: number, script: string): Promise<SfdiskJson> {
  await makeRaw(path, size);
  const r = await run("sh", ["-c", `sfdisk -q '${path}' <<'EOF'\n${script}\nEOF`]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(await runOk("sfdisk", ["--json", path])) as SfdiskJson;
}

async function tableOf(path: string): Promise<PartitionTable | null> {
  const { source } = await openImage(path);
  try {
    return await readPartitionTable(source, path);
  } finally {
    await source.close();
  }
}

/** Our table in sfdisk's terms: number, start and size in sectors (extended containers are not partitions for us). */
function asSfdisk(json: SfdiskJson) {
  return json.partitiontable.partitions
    .filter((p) => !["5", "f", "85"].includes(p.type))
    .map((p) => ({ number: Number(/(\d+)$/.exec(p.node)![1]), start: p.start, size: p.size }));
}

const MBR_WITH_LOGICALS = `label: dos
start=2048, size=4096, type=83
start=8192, size=40960, type=5
start=6144, size=2048, type=8e
start=10240, size=2048, type=83
start=14336, size=2048, type=82
start=18432, size=8192, type=83`;

test("MBR with an extended partition and a chain of logicals matches sfdisk", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "mbr.raw");
  const expected = await sfdiskImage(path, 32 * MiB, MBR_WITH_LOGICALS);
  const table = (await tableOf(path))!;
  assert.equal(table.scheme, "mbr");
  assert.equal(`0x${table.diskId}`, expected.partitiontable.id);
  assert.deepEqual(
    table.partitions.map((p) => ({ number: p.number, start: p.offset / 512, size: p.size / 512 })),
    asSfdisk(expected),
  );
  assert.deepEqual(
    table.partitions.map((p) => p.role),
    ["filesystem", "lvm", "filesystem", "swap", "filesystem"],
  );
});

test("GPT matches sfdisk (GUIDs, names), also read through a qcow2", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "gpt.raw");
  const expected = await sfdiskImage(
    path,
    64 * MiB,
    `label: gpt\nsize=8192, type=L, name=root\nsize=4096, type=S\nsize=16384, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=pv`,
  );
  await convertFile({ input: path, output: join(dir, "gpt.qcow2"), outputFormat: "qcow2" });
  for (const image of [path, join(dir, "gpt.qcow2")]) {
    const table = (await tableOf(image))!;
    assert.equal(table.scheme, "gpt");
    assert.equal(table.diskId, expected.partitiontable.id.toLowerCase());
    assert.deepEqual(
      table.partitions.map((p) => ({ number: p.number, start: p.offset / 512, size: p.size / 512 })),
      asSfdisk(expected),
    );
    const want = expected.partitiontable.partitions;
    assert.deepEqual(
      table.partitions.map((p) => [p.type, p.partUuid, p.name]),
      want.map((p) => [p.type.toLowerCase(), p.uuid?.toLowerCase(), p.name]),
    );
    assert.deepEqual(
      table.partitions.map((p) => p.role),
      ["filesystem", "swap", "lvm"],
    );
  }
});

test("a GPT with a damaged primary header or entries falls back to the backup", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "gpt.raw");
  await sfdiskImage(path, 16 * MiB, `label: gpt\nsize=4096, type=L`);
  const pristine = (await tableOf(path))!;
  const h = await open(path, "r+");
  await h.write(Buffer.from([0xff]), 0, 1, 512 + 40); // first usable LBA: header CRC now wrong
  await h.close();
  const fromBackup = (await tableOf(path))!;
  assert.equal(fromBackup.usedBackupGpt, true);
  assert.deepEqual(fromBackup.partitions, pristine.partitions);

  const path2 = join(dir, "gpt2.raw");
  await sfdiskImage(path2, 16 * MiB, `label: gpt\nsize=4096, type=L`);
  const h2 = await open(path2, "r+");
  await h2.write(Buffer.from([0x42]), 0, 1, 1024 + 100); // inside entry 1: entries CRC wrong
  await h2.close();
  assert.equal((await tableOf(path2))!.usedBackupGpt, true);
});

test("a disk without a table reads as null (a bare filesystem)", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "bare.raw");
  await makeRaw(path, 4 * MiB);
  assert.equal(await tableOf(path), null);
});

/** Writes raw MBR entries (type, start LBA, sectors) into the sector at `lba`. */
async function writeEntries(path: string, lba: number, entries: Array<[number, number, number]>): Promise<void> {
  const sector = Buffer.alloc(512);
  entries.forEach(([type, start, sectors], i) => {
    sector[446 + i * 16 + 4] = type;
    sector.writeUInt32LE(start, 446 + i * 16 + 8);
    sector.writeUInt32LE(sectors, 446 + i * 16 + 12);
  });
  sector.writeUInt16LE(0xaa55, 510);
  const h = await open(path, "r+");
  await h.write(sector, 0, 512, lba * 512);
  await h.close();
}

test("hostile MBR tables are refused clearly", async (t) => {
  const dir = await scratch(t);
  const cases: Array<{ name: string; build(path: string): Promise<void>; message: RegExp }> = [
    {
      name: "overlapping primaries",
      build: (p) =>
        writeEntries(p, 0, [
          [0x83, 2048, 4096],
          [0x83, 4096, 4096],
        ]),
      message: /overlap/,
    },
    { name: "beyond the disk", build: (p) => writeEntries(p, 0, [[0x83, 2048, 1 << 20]]), message: /beyond the disk/ },
    { name: "inside the table", build: (p) => writeEntries(p, 0, [[0x83, 0, 100]]), message: /inside the table/ },
    {
      name: "a looping extended chain",
      build: async (p) => {
        // The second EBR links back to itself.
        await writeEntries(p, 0, [[0x05, 2048, 8192]]);
        await writeEntries(p, 2048, [
          [0x83, 8, 8],
          [0x05, 64, 64],
        ]);
        await writeEntries(p, 2112, [
          [0x83, 8, 8],
          [0x05, 64, 64],
        ]);
      },
      message: /loops/,
    },
    {
      name: "a chain longer than the cap",
      build: async (p) => {
        await writeEntries(p, 0, [[0x05, 2048, 8 * 301]]);
        for (let i = 0; i < 300; i++)
          await writeEntries(p, 2048 + i * 8, [
            [0x83, 4, 1],
            [0x05, (i + 1) * 8, 8],
          ]);
      },
      message: /more than 256 logical/,
    },
    {
      name: "an EBR outside the extended partition",
      build: async (p) => {
        await writeEntries(p, 0, [[0x05, 2048, 4096]]);
        await writeEntries(p, 2048, [
          [0x83, 64, 64],
          [0x05, 100000, 64],
        ]);
      },
      message: /outside the extended partition/,
    },
  ];
  for (const c of cases) {
    const path = join(dir, `${c.name.replaceAll(" ", "-")}.raw`);
    await makeRaw(path, 16 * MiB);
    await c.build(path);
    await assert.rejects(tableOf(path), { name: "CorruptImageError" }, c.name);
    await assert.rejects(tableOf(path), (e: unknown) => {
      assert.ok(e instanceof CorruptImageError, `${c.name}: ${String(e)}`);
      assert.match(e.message, c.message, c.name);
      return true;
    });
  }
});

test("a GPT claiming an absurd entry count is refused without reading it", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "gpt.raw");
  await sfdiskImage(path, 16 * MiB, `label: gpt\nsize=4096, type=L`);
  const bytes = await readFile(path);
  const { crc32 } = await import("node:zlib");
  for (const at of [512, bytes.length - 512]) {
    bytes.writeUInt32LE(0x7fffffff, at + 80);
    bytes.writeUInt32LE(0, at + 16);
    bytes.writeUInt32LE(crc32(bytes.subarray(at, at + 92)), at + 16);
  }
  await writeFile(path, bytes);
  await assert.rejects(tableOf(path), /no valid GPT .*entries of 128 bytes/);
});
