/**
 * A VDI whose disk size is not a whole number of sectors (VBoxManage convertfromraw writes a raw file's exact
 * length): chromogenic reads exactly the size the header states, qemu-img rounds it up to a sector, on purpose,
 * and `info` says so.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { makeRaw, mixedRegions, qemuImg, qemuInfo, runCli, scratch } from "../../../helpers/tools.js";
import { patch, u64 } from "../../../helpers/patching.js";

const MiB = 2 ** 20;
/** The header's disk size field (VDICore.h, version 1.1). */
const DISK_SIZE_AT = 368;

test("an unaligned VDI disk size is read exactly (qemu-img rounds it up), and info warns", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "src.raw");
  await makeRaw(raw, 3 * MiB, mixedRegions(3 * MiB));
  const vdi = join(dir, "odd.vdi");
  await qemuImg("convert", "-f", "raw", "-O", "vdi", raw, vdi);
  const size = 3 * MiB - 300;
  await patch(vdi, DISK_SIZE_AT, u64(BigInt(size)));
  assert.equal((await qemuInfo(vdi))["virtual-size"], 3 * MiB, "qemu-img rounds up to a sector");

  const out = join(dir, "out.raw");
  const r = await runCli(["convert", "-q", "-O", "raw", vdi, out], process.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(out)).size, size);
  assert.ok((await readFile(out)).equals((await readFile(raw)).subarray(0, size)));

  const warning =
    `the disk size ${size} is not a whole number of 512-byte sectors: chromogenic reads exactly ${size} bytes, ` +
    `as the header states; qemu-img rounds it up to ${3 * MiB}`;
  const text = await runCli(["info", vdi], process.env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`virtual size: .* \\(${size} bytes\\)`));
  assert.ok(text.stdout.endsWith(`warning: ${warning}\n`), text.stdout);
  const json = await runCli(["info", "--json", vdi], process.env);
  assert.deepEqual(JSON.parse(json.stdout).warnings, [warning]);
});
