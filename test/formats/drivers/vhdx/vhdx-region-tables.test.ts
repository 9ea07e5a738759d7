/**
 * VHDX keeps its region table twice. qemu-img reads only the first copy and refuses the file when it is damaged;
 * chromogenic reads the second then, on purpose (it exists for that case), and `info` says so. Copies that are
 * both valid but differ are read by the first, as qemu-img does, with a warning.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { makeRaw, mixedRegions, qemuImg, run, runCli, scratch } from "../../../helpers/tools.js";
import { editChecksummed } from "../../../helpers/vhdx-edits.js";

const KiB = 1024;
const MiB = 2 ** 20;
const REGION_TABLES = [192 * KiB, 256 * KiB] as const;
const REGION_TABLE_SIZE = 64 * KiB;
/** The first region table entry's file offset (entries start at 16; the offset follows the 16-byte GUID). */
const FIRST_ENTRY_OFFSET_AT = 16 + 16;

async function qemuVhdx(dir: string): Promise<{ vhdx: string; raw: string }> {
  const raw = join(dir, "src.raw");
  await makeRaw(raw, 8 * MiB, mixedRegions(8 * MiB));
  const vhdx = join(dir, "disk.vhdx");
  await qemuImg("convert", "-f", "raw", "-O", "vhdx", raw, vhdx);
  return { vhdx, raw };
}

async function infoWarnings(vhdx: string): Promise<{ text: string; json: unknown }> {
  const text = await runCli(["info", vhdx], process.env);
  assert.equal(text.code, 0, text.stderr);
  const json = await runCli(["info", "--json", vhdx], process.env);
  assert.equal(json.code, 0, json.stderr);
  return { text: text.stdout, json: (JSON.parse(json.stdout) as { warnings?: unknown }).warnings };
}

test("a damaged first region table copy: read by the second (qemu-img refuses the file), and info says so", async (t) => {
  const dir = await scratch(t);
  const { vhdx, raw } = await qemuVhdx(dir);
  await editChecksummed(vhdx, REGION_TABLES[0], REGION_TABLE_SIZE, (b) => (b[40000] = 1), false);
  const qemu = await run("qemu-img", ["info", "-f", "vhdx", vhdx]);
  assert.notEqual(qemu.code, 0, "qemu-img refuses a VHDX whose first region table is damaged");

  const out = join(dir, "out.raw");
  const r = await runCli(["convert", "-q", "-O", "raw", vhdx, out], process.env);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(out)).equals(await readFile(raw)), "read as the disk it was made from");
  const warning = (crc: string) =>
    `the first region table copy is unusable (VHDX region table at 192 KiB has a bad CRC-32C (${crc})); the ` +
    "second, which VHDX keeps for this case, was read; qemu-img reads only the first copy and refuses this file";
  const { text, json } = await infoWarnings(vhdx);
  const shown = /^warning: the first region table copy is unusable \(.*bad CRC-32C \((stored .*)\)\); the second/m.exec(
    text,
  );
  assert.ok(shown, text);
  assert.ok(text.endsWith(`warning: ${warning(shown[1]!)}\n`), text);
  assert.deepEqual(json, [warning(shown[1]!)]);
});

test("region table copies that are both valid but differ: the first is read, as qemu-img does, with a warning", async (t) => {
  const dir = await scratch(t);
  const { vhdx } = await qemuVhdx(dir);
  assert.equal((await infoWarnings(vhdx)).json, undefined, "identical copies: nothing to say");
  // The second copy's first region moved 1 MiB on, its CRC made valid again.
  await editChecksummed(vhdx, REGION_TABLES[1], REGION_TABLE_SIZE, (b) =>
    b.writeBigUInt64LE(b.readBigUInt64LE(FIRST_ENTRY_OFFSET_AT) + BigInt(MiB), FIRST_ENTRY_OFFSET_AT),
  );
  const warning = "the two region table copies differ; the first was read, as qemu-img does";
  const { text, json } = await infoWarnings(vhdx);
  assert.ok(text.endsWith(`warning: ${warning}\n`), text);
  assert.deepEqual(json, [warning]);
  const ours = join(dir, "ours.raw");
  const theirs = join(dir, "qemu.raw");
  assert.equal((await runCli(["convert", "-q", "-O", "raw", vhdx, ours], process.env)).code, 0);
  await qemuImg("convert", "-f", "vhdx", "-O", "raw", vhdx, theirs);
  assert.ok((await readFile(ours)).equals(await readFile(theirs)), "read as qemu-img reads it");
});
