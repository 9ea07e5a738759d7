import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyFile, readFile, truncate } from "node:fs/promises";
import { openImage } from "../src/formats/engine/open-image.js";
import { convertFile } from "../src/formats/engine/convert.js";
import { getDriver } from "../src/formats/registry.js";
import { CorruptImageError, UnsupportedFeatureError } from "../src/formats/errors.js";
import { makeRaw, mixedRegions, qemuImg, run, runOk, scratch } from "./helpers/tools.js";
import { qemuSampleImage } from "./helpers/qemu-samples.js";
import { assertSameRaw, extentsOf, vhdiinfo, withSource } from "./helpers/image-checks.js";
import { patch, u32, u64 } from "./helpers/patching.js";
import { editChecksummed, readAt } from "./helpers/vhdx-edits.js";

const KiB = 1024;
const MiB = 2 ** 20;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const HEADERS = [64 * KiB, 128 * KiB];
const REGION_TABLES = [192 * KiB, 256 * KiB];
const BAT_GUID = "6677c22d23f600429d64115e9bfd4a08";
const METADATA_GUID = "06a27c8b90479a4bb8fe575f050f886e";
const FILE_PARAMETERS_GUID = "3767a1ca36fa434db3b633f0aa44e76b";
const VIRTUAL_SIZE_GUID = "2442a52f1bcd7648b2115dbed83bf4b8";

/** Where the regions and metadata items of a VHDX are, read independently of the driver. */
async function vhdxLayout(path: string): Promise<{ bat: number; metadata: number; items: Map<string, number> }> {
  const table = await readAt(path, REGION_TABLES[0]!, 64 * KiB);
  const regions = new Map<string, number>();
  for (let i = 0; i < table.readUInt32LE(8); i++) {
    const e = table.subarray(16 + 32 * i, 48 + 32 * i);
    regions.set(e.subarray(0, 16).toString("hex"), Number(e.readBigUInt64LE(16)));
  }
  const metadata = regions.get(METADATA_GUID)!;
  const meta = await readAt(path, metadata, 64 * KiB);
  const items = new Map<string, number>();
  for (let i = 0; i < meta.readUInt16LE(10); i++) {
    const e = meta.subarray(32 + 32 * i, 64 + 32 * i);
    items.set(e.subarray(0, 16).toString("hex"), metadata + e.readUInt32LE(16));
  }
  return { bat: regions.get(BAT_GUID)!, metadata, items };
}

async function qemuVirtualSize(path: string): Promise<number> {
  const info = JSON.parse(await qemuImg("info", "-f", "vhdx", "--output=json", path)) as { "virtual-size": number };
  return info["virtual-size"];
}

/** Our read of a VHDX (converted to raw) equals qemu-img's. */
async function assertReadsLikeQemu(dir: string, vhdx: string, name: string): Promise<void> {
  const ours = join(dir, `${name}.ours.raw`);
  const result = await convertFile({ input: vhdx, output: ours, outputFormat: "raw" });
  assert.equal(result.inputFormat, "vhdx");
  const theirs = join(dir, `${name}.qemu.raw`);
  await qemuImg("convert", "-f", "vhdx", "-O", "raw", vhdx, theirs);
  await assertSameRaw(ours, theirs);
}

async function qemuVhdx(dir: string, name: string, size: number, options = "subformat=dynamic"): Promise<string> {
  const raw = join(dir, `${name}.src.raw`);
  await makeRaw(raw, size, mixedRegions(size));
  const vhdx = join(dir, `${name}.vhdx`);
  await qemuImg("convert", "-f", "raw", "-O", "vhdx", "-o", options, raw, vhdx);
  return vhdx;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading what qemu-img and Windows write

for (const options of [
  "subformat=dynamic",
  "subformat=dynamic,block_size=1M",
  "subformat=dynamic,block_size=32M",
  "subformat=fixed",
  "subformat=fixed,block_size=256M",
]) {
  test(`qemu-img VHDX (${options}) reads identical to qemu-img convert -O raw; vhdiinfo agrees`, async (t) => {
    const dir = await scratch(t);
    for (const size of [40 * MiB + 3 * 512, 3 * MiB + 512]) {
      const vhdx = await qemuVhdx(dir, `s${size}`, size, options);
      await assertReadsLikeQemu(dir, vhdx, `s${size}`);
      const info = await vhdiinfo(vhdx);
      await withSource(vhdx, async (s) => {
        assert.equal(s.virtualSize, await qemuVirtualSize(vhdx));
        assert.equal(s.virtualSize, info.mediaSize);
        const d = await s.details();
        assert.equal(d.formatSpecific.diskType, options.includes("fixed") ? "fixed" : "dynamic");
        assert.equal(d.formatSpecific.diskType, info.diskType);
        assert.equal(d.formatSpecific.dataWriteGuid, info.identifier);
        const blockSize = /block_size=(\d+)M/.exec(options);
        if (blockSize) assert.equal(d.clusterSize, Number(blockSize[1]) * MiB);
      });
    }
  });
}

test("VHDX block states map to extents: present → data, ZERO → zero, NOT_PRESENT → unallocated", async (t) => {
  const dir = await scratch(t);
  // qemu-img marks a new dynamic VHDX's blocks ZERO unless block_state_zero=off leaves them NOT_PRESENT.
  for (const [stateZero, absent, counter] of [
    ["on", "zero", "blocksZero"],
    ["off", "unallocated", "blocksNotPresent"],
  ] as const) {
    const vhdx = join(dir, `states-${stateZero}.vhdx`);
    await qemuImg("create", "-f", "vhdx", "-o", `block_size=1M,block_state_zero=${stateZero}`, vhdx, "16M");
    await runOk("qemu-io", ["-f", "vhdx", "-c", "write -P 0x11 1M 4k", vhdx]);
    await withSource(vhdx, async (s) => {
      const extents = await extentsOf(s);
      assert.deepEqual(
        extents.map((e) => [e.offset, e.length, e.kind]),
        [
          [0, MiB, absent],
          [MiB, MiB, "data"],
          [2 * MiB, 14 * MiB, absent],
        ],
      );
      const buf = await s.read(MiB - 2, 8);
      assert.deepEqual([...buf], [0, 0, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11]);
      const d = await s.details();
      assert.equal(d.formatSpecific.blocksPresent, 1);
      assert.equal(d.formatSpecific[counter], 15);
      assert.equal(d.allocatedBytes, MiB);
    });
  }
});

for (const name of ["iotest-dynamic-1G.vhdx", "test-disk2vhd.vhdx"]) {
  test(`QEMU sample ${name} (written by Windows) reads identical to qemu-img convert -O raw`, async (t) => {
    const dir = await scratch(t);
    const sample = await qemuSampleImage(name);
    await assertReadsLikeQemu(dir, sample, "sample");
    const info = await vhdiinfo(sample);
    await withSource(sample, async (s) => {
      assert.equal(s.virtualSize, info.mediaSize);
      const d = await s.details();
      assert.equal(d.formatSpecific.dataWriteGuid, info.identifier);
      assert.equal(d.formatSpecific.diskType, info.diskType);
    });
  });
}

test("a VHDX whose log needs replaying (QEMU's dirty-log sample) is refused with the way out", async () => {
  const sample = await qemuSampleImage("iotest-dirtylog-10G-4M.vhdx");
  await assert.rejects(openImage(sample), (e: unknown) => {
    assert.ok(e instanceof UnsupportedFeatureError, String(e));
    assert.match(e.message, /log that may need replaying/);
    assert.match(e.message, /qemu-img check -r all/);
    assert.match(e.message, /Hyper-V/);
    return true;
  });
});

test("vhdx → vhd (fixed and dynamic) keeps the disk identical", async (t) => {
  const dir = await scratch(t);
  const size = 20 * MiB + 512;
  const vhdx = await qemuVhdx(dir, "src", size);
  const raw = join(dir, "src.src.raw");
  for (const subformat of ["dynamic", "fixed"] as const) {
    const vhd = join(dir, `${subformat}.vhd`);
    await convertFile({ input: vhdx, output: vhd, outputFormat: "vhd", createOptions: { subformat } });
    const r = await run("qemu-img", ["compare", "-f", "raw", "-F", "vpc", raw, vhd]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
});

test("vhdx is read-only: it has no create, and it is detected by its signature", () => {
  const d = getDriver("vhdx");
  assert.equal(d.create, undefined);
  assert.equal(d.probe({ head: Buffer.from("vhdxfile"), size: 4 * MiB, readTail: async () => Buffer.alloc(0) }), 100);
  assert.equal(d.probe({ head: Buffer.from("vhdxfilf"), size: 4 * MiB, readTail: async () => Buffer.alloc(0) }), 0);
});

// ---------------------------------------------------------------------------------------------------------------
// Damaged and hostile files

test("headers: a damaged header falls back to the other; both damaged is refused", async (t) => {
  const dir = await scratch(t);
  const good = await qemuVhdx(dir, "hdr", 8 * MiB);
  const current = await withSource(good, async (s) => (await s.details()).formatSpecific.currentHeader as number);
  const other = current === 1 ? 2 : 1;

  const oneBad = join(dir, "one-bad.vhdx");
  await copyFile(good, oneBad);
  await editChecksummed(oneBad, HEADERS[current - 1]!, 4 * KiB, (b) => (b[200] = 0x42), false);
  await withSource(oneBad, async (s) => assert.equal((await s.details()).formatSpecific.currentHeader, other));
  await assertReadsLikeQemu(dir, oneBad, "one-bad");

  await editChecksummed(oneBad, HEADERS[other - 1]!, 4 * KiB, (b) => b.write("hexd", 0, "latin1"), false);
  await assert.rejects(openImage(oneBad, { format: "vhdx" }), (e: unknown) => {
    assert.ok(e instanceof CorruptImageError);
    assert.match(e.message, /neither VHDX header is valid/);
    assert.match(e.message, /bad CRC-32C/);
    assert.match(e.message, /no "head" signature/);
    return true;
  });

  // A header whose CRC is right but whose sequence number is lower loses to the other.
  const older = join(dir, "older.vhdx");
  await copyFile(good, older);
  await editChecksummed(older, HEADERS[current - 1]!, 4 * KiB, (b) => b.writeBigUInt64LE(0n, 8));
  await withSource(older, async (s) => assert.equal((await s.details()).formatSpecific.currentHeader, other));
});

test("region tables: a damaged first copy falls back to the second; both damaged is refused", async (t) => {
  const dir = await scratch(t);
  const vhdx = await qemuVhdx(dir, "regions", 8 * MiB);
  const raw = join(dir, "regions.src.raw");
  await editChecksummed(vhdx, REGION_TABLES[0]!, 64 * KiB, (b) => (b[40000] = 1), false);
  await withSource(vhdx, async (s) => {
    assert.equal((await s.details()).formatSpecific.regionTableCopy, 2);
    // qemu refuses the damaged file outright, so the reference is the raw disk it was made from.
    assert.deepEqual(await s.read(0, 8 * MiB), await readFile(raw));
  });
  await editChecksummed(vhdx, REGION_TABLES[1]!, 64 * KiB, (b) => (b[40000] = 1), false);
  await assert.rejects(openImage(vhdx), /region table at 192 KiB has a bad CRC-32C/);
});

test("hostile VHDX files are refused with a clear error", async (t) => {
  const dir = await scratch(t);
  const base = await qemuVhdx(dir, "base", 8 * MiB, "subformat=dynamic,block_size=1M");
  const layout = await vhdxLayout(base);
  const fileParameters = layout.items.get(FILE_PARAMETERS_GUID)!;
  const virtualSize = layout.items.get(VIRTUAL_SIZE_GUID)!;
  const cases: [string, (p: string) => Promise<void>, new (...a: never[]) => Error, RegExp][] = [
    [
      "non-zero LogGuid",
      async (p) => {
        for (const at of HEADERS) await editChecksummed(p, at, 4 * KiB, (b) => b.fill(7, 48, 64));
      },
      UnsupportedFeatureError,
      /log that may need replaying \(LogGuid 07070707-/,
    ],
    [
      "differencing (HasParent)",
      (p) => patch(p, fileParameters + 4, u32(2)),
      UnsupportedFeatureError,
      /differencing VHDX.* is not supported/,
    ],
    [
      "block 0 beyond the end of the file",
      (p) => patch(p, layout.bat, u64((BigInt(100_000) << 20n) | 6n)),
      CorruptImageError,
      /VHDX block 0 at offset 100000 MiB .* beyond the end of the file/,
    ],
    [
      "block 0 inside the header section",
      (p) => patch(p, layout.bat, u64(6n)),
      CorruptImageError,
      /VHDX block 0 .* inside the header section/,
    ],
    [
      "PARTIALLY_PRESENT outside a differencing file",
      (p) => patch(p, layout.bat, u64((4n << 20n) | 7n)),
      CorruptImageError,
      /PARTIALLY_PRESENT/,
    ],
    ["reserved block state", (p) => patch(p, layout.bat, u64(5n)), CorruptImageError, /reserved state 5/],
    [
      "unknown required region",
      (p) =>
        editChecksummed(p, REGION_TABLES[0]!, 64 * KiB, (b) => {
          const n = b.readUInt32LE(8);
          const e = b.subarray(16 + 32 * n, 48 + 32 * n);
          e.fill(0xab, 0, 16);
          e.writeBigUInt64LE(BigInt(8 * MiB), 16);
          e.writeUInt32LE(MiB, 24);
          e.writeUInt32LE(1, 28);
          b.writeUInt32LE(n + 1, 8);
        }),
      UnsupportedFeatureError,
      /required region abababab-abab-abab-abab-abababababab/,
    ],
    [
      "virtual size 2^60",
      (p) => patch(p, virtualSize, u64(2n ** 60n)),
      CorruptImageError,
      /virtual disk size .* outside the allowed range/,
    ],
    [
      "a 60 TiB disk of 1 MiB blocks (BAT beyond the table limit)",
      (p) => patch(p, virtualSize, u64(60n * 2n ** 40n)),
      CorruptImageError,
      /block allocation table of \d+ entries .* exceeds the 33554432-byte limit/,
    ],
    [
      "block size 3 MiB",
      (p) => patch(p, fileParameters, u32(3 * MiB)),
      CorruptImageError,
      /block size 3145728 is not a power of two/,
    ],
    ["truncated file", (p) => truncate(p, 2 * MiB + 512), CorruptImageError, /beyond the end of the file/],
  ];
  const before = process.memoryUsage().arrayBuffers;
  for (const [what, edit, type, message] of cases) {
    const path = join(dir, `${what.replace(/\W+/g, "-")}.vhdx`);
    await copyFile(base, path);
    await edit(path);
    await assert.rejects(
      openImage(path, { format: "vhdx" }),
      (e: unknown) => {
        assert.ok(e instanceof type, `${what}: ${String(e)}`);
        assert.match((e as Error).message, message, what);
        return true;
      },
      what,
    );
  }
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * MiB, "no allocation sized by hostile fields");
});
