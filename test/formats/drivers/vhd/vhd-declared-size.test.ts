/**
 * Where a VHD's footer and its data disagree, and where qemu-img reads the file differently, through the CLI:
 * data past the size the footer declares (a footer of size 0 with valid checksums, a dynamic disk's blocks past
 * its end, a fixed disk's data area longer than its disk) is refused, where qemu-img reads a dynamic disk of the
 * declared size and silently drops the rest; sector bitmaps marking sectors absent are honoured, where qemu-img ignores them, and
 * `info` says so in its warnings.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { convertFile } from "../../../../src/formats/engine/convert.js";
import { makeRaw, mixedRegions, pattern, qemuImg, qemuInfo, runCli, scratch } from "../../../helpers/tools.js";
import { editFooters, editStructure } from "../../../helpers/vhd-edits.js";
import { assertNoResult } from "../../../helpers/cli-refusal.js";

const MiB = 2 ** 20;
/** Footer fields (VHD specification): current size (u64 BE) and the geometry (cylinders u16, heads, sectors). */
const CURRENT_SIZE_AT = 48;
const GEOMETRY_AT = 56;

async function qemuVhd(dir: string, subformat: "dynamic" | "fixed", size = 8 * MiB): Promise<string> {
  const raw = join(dir, `${subformat}.raw`);
  await makeRaw(raw, size, mixedRegions(size));
  const vhd = join(dir, `${subformat}.vhd`);
  await qemuImg("convert", "-f", "raw", "-O", "vpc", "-o", `subformat=${subformat},force_size=on`, raw, vhd);
  return vhd;
}

/** Sets the size a footer declares, by current size and by geometry (0 cylinders: no CHS size). */
function declare(size: number, cylinders = 0): (footer: Buffer) => void {
  return (footer) => {
    footer.writeBigUInt64BE(BigInt(size), CURRENT_SIZE_AT);
    footer.writeUInt16BE(cylinders, GEOMETRY_AT);
  };
}

/** info (text and --json) and convert all fail with `message`, writing nothing. */
async function refusedByCli(dir: string, vhd: string, message: RegExp): Promise<void> {
  const before = (await readdir(dir)).sort();
  for (const args of [
    ["info", vhd],
    ["info", "--json", vhd],
    ["convert", "-q", "-O", "raw", vhd, join(dir, "out.raw")],
  ]) {
    const r = await runCli(args, process.env);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assertNoResult(r, args, "ECORRUPT");
  }
  assert.deepEqual((await readdir(dir)).sort(), before, "nothing written");
}

test("a dynamic VHD whose footer declares 0 bytes (checksums valid) is refused, not read as an empty disk", async (t) => {
  const dir = await scratch(t);
  const vhd = await qemuVhd(dir, "dynamic");
  await editFooters(vhd, declare(0));
  // What qemu-img does: a 0-byte disk, the blocks silently dropped.
  assert.equal((await qemuInfo(vhd))["virtual-size"], 0);
  await refusedByCli(
    dir,
    vhd,
    /^chromogenic: .*dynamic\.vhd: VHD block 0 \(disk offset 0\) is allocated, but the footer declares a 0-byte disk: the data past the declared size would be lost/,
  );
});

test("a dynamic VHD with blocks allocated past a smaller declared size is refused, the first such block named", async (t) => {
  const dir = await scratch(t);
  const vhd = await qemuVhd(dir, "dynamic");
  // mixedRegions puts data at 4 MiB and just before 5 MiB: blocks 2 of 2 MiB each.
  await editFooters(vhd, declare(4 * MiB));
  assert.equal((await qemuInfo(vhd))["virtual-size"], 4 * MiB);
  await refusedByCli(
    dir,
    vhd,
    /VHD block 2 \(disk offset 4194304\) is allocated, but the footer declares a 4194304-byte disk/,
  );
});

test("a fixed VHD whose data area is longer than its declared disk is refused", async (t) => {
  const dir = await scratch(t);
  const vhd = await qemuVhd(dir, "fixed");
  await editStructure(vhd, (await stat(vhd)).size - 512, 512, declare(0));
  await refusedByCli(dir, vhd, /fixed VHD holds 8388608 bytes of data, but its footer declares a 0-byte disk/);
});

test("sector bitmaps marking sectors absent: read as zeros (qemu-img reads the stored bytes), and info warns", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "in.raw");
  const data = pattern(2 * MiB, 5);
  await makeRaw(raw, 4 * MiB, [{ offset: 0, data }]);
  const vhd = join(dir, "bitmap.vhd");
  await convertFile({ input: raw, output: vhd, outputFormat: "vhd" });
  // Block 0's bitmap is where its BAT entry (at 1536, after the footer copy and the dynamic header) points: clear
  // the bits of sectors 8..15 (byte 1; most significant bit first).
  const bitmapAt = (await readFile(vhd)).readUInt32BE(1536) * 512;
  const h = await open(vhd, "r+");
  await h.write(Buffer.from([0x00]), 0, 1, bitmapAt + 1);
  await h.close();

  const ours = join(dir, "ours.raw");
  const converted = await runCli(["convert", "-q", "-O", "raw", vhd, ours], process.env);
  assert.equal(converted.code, 0, converted.stderr);
  const expected = Buffer.from(data);
  expected.fill(0, 8 * 512, 16 * 512);
  assert.deepEqual((await readFile(ours)).subarray(0, 2 * MiB), expected);
  const theirs = join(dir, "qemu.raw");
  await qemuImg("convert", "-f", "vpc", "-O", "raw", vhd, theirs);
  assert.deepEqual((await readFile(theirs)).subarray(0, 2 * MiB), data, "qemu-img reads the stored bytes");

  const warning =
    "1 block(s) mark some of their sectors absent in their sector bitmaps: chromogenic reads those sectors as " +
    "zeros, as the VHD specification has it; qemu-img ignores sector bitmaps and reads the bytes stored there, " +
    "so the two may read this disk differently";
  const text = await runCli(["info", vhd], process.env);
  assert.equal(text.code, 0, text.stderr);
  assert.ok(text.stdout.endsWith(`warning: ${warning}\n`), text.stdout);
  const json = await runCli(["info", "--json", vhd], process.env);
  assert.deepEqual(JSON.parse(json.stdout).warnings, [warning]);
  // A VHD whose bitmaps are whole has nothing to warn of.
  const plain = await runCli(["info", "--json", await qemuVhd(dir, "dynamic")], process.env);
  assert.equal(JSON.parse(plain.stdout).warnings, undefined);
});
