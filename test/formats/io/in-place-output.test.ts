/**
 * Outputs written where they are, through the CLI: a block device (a loop device over a file filled with old
 * bytes, so that a hole left unzeroed shows) stays a block device and holds exactly the image; one too small is
 * refused untouched; `-n` writes into an existing file, same inode, old bytes gone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { makeRaw, mixedRegions, pattern, qemuCheck, run, runCli, scratch, sha256File } from "../../helpers/tools.js";

const MiB = 2 ** 20;
const IMAGE = 24 * MiB + 4096;

/** A file of `size` bytes: its first `filled` bytes old garbage, the rest a hole (zeros). */
async function oldBytes(path: string, size: number, filled: number): Promise<void> {
  await makeRaw(path, size, [{ offset: 0, data: pattern(filled, 99) }]);
}

/** A loop device over `file`, detached when the test ends. losetup must work here (root, loop module). */
async function loopDevice(t: { after(fn: () => Promise<void>): void }, file: string): Promise<string> {
  const r = await run("losetup", ["--find", "--show", file]);
  assert.equal(r.code, 0, `these tests need a loop device (root and the loop module): losetup says ${r.stderr}`);
  const device = r.stdout.trim();
  t.after(async () => {
    await run("losetup", ["--detach", device]);
  });
  return device;
}

for (const format of ["raw", "qcow2"]) {
  test(`a loop device as a ${format} output is written in place: still a device, holding the image, old bytes gone`, async (t) => {
    const dir = await scratch(t);
    const input = join(dir, "in.raw");
    await makeRaw(input, IMAGE, mixedRegions(IMAGE));
    // Old bytes over the image's whole length: any hole the conversion does not zero would show in the compare.
    const backing = join(dir, "device.img");
    await oldBytes(backing, 32 * MiB, IMAGE);
    const device = await loopDevice(t, backing);
    const r = await runCli(["convert", "-q", "-O", format, input, device], process.env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await stat(device)).isBlockDevice(), `${device} is no longer a block device`);
    assert.deepEqual(await readdir(dir), ["device.img", "in.raw"], "no temporary file was made");
    const compared = await run("qemu-img", ["compare", "-f", "raw", "-F", format, input, device]);
    assert.equal(compared.code, 0, compared.stdout + compared.stderr);
    if (format === "qcow2") {
      const check = await run("qemu-img", ["check", "-f", "qcow2", device]);
      assert.equal(check.code, 0, check.stdout + check.stderr);
    }
  });
}

test("a device smaller than the raw image is refused before anything is written to it", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, IMAGE, mixedRegions(IMAGE));
  const backing = join(dir, "small.img");
  await oldBytes(backing, 16 * MiB, 16 * MiB);
  const before = await sha256File(backing);
  const device = await loopDevice(t, backing);
  const r = await runCli(["convert", "-q", "-O", "raw", input, device], process.env);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${device} is too small for the image: the device holds 16\\.0 MiB`));
  assert.ok((await stat(device)).isBlockDevice());
  assert.equal(await sha256File(backing), before, "the device was written");
});

for (const format of ["raw", "qcow2", "vhd"]) {
  test(`-n writes a ${format} image into an existing file: same inode, old bytes gone, ends with the image`, async (t) => {
    const dir = await scratch(t);
    const input = join(dir, "in.raw");
    await makeRaw(input, IMAGE, mixedRegions(IMAGE));
    const output = join(dir, "out.img");
    await oldBytes(output, 40 * MiB, 40 * MiB);
    const before = await stat(output);
    const r = await runCli(["convert", "-q", "-n", "-O", format, input, output], process.env);
    assert.equal(r.code, 0, r.stderr);
    const after = await stat(output);
    assert.equal(after.ino, before.ino, "-n replaced the file instead of writing into it");
    assert.deepEqual(await readdir(dir), ["in.raw", "out.img"]);
    const qemuFormat = format === "vhd" ? "vpc" : format;
    const compared = await run("qemu-img", ["compare", "-f", "raw", "-F", qemuFormat, input, output]);
    assert.equal(compared.code, 0, compared.stdout + compared.stderr);
    if (format === "raw") {
      assert.equal(after.size, IMAGE, "a raw output in place ends where the disk ends");
      assert.ok(after.blocks * 512 < 8 * MiB, `holes were written instead of punched (${after.blocks * 512} bytes)`);
    }
    if (format === "qcow2") assert.equal((await qemuCheck(output)).code, 0);
  });
}

test("-n refuses an output that does not exist, and creates nothing", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, MiB);
  const r = await runCli(["convert", "-n", "-O", "raw", input, join(dir, "missing.raw")], process.env);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /output .*missing\.raw does not exist: -n writes into an existing file or block device/);
  assert.deepEqual(await readdir(dir), ["in.raw"]);
});
