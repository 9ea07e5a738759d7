/**
 * The raw driver's `size` and `offset` open options: a raw disk arriving on a pipe (which has no size) is read
 * given its size; without one it is refused naming the option; a pipe ending short of it is a clear error;
 * offset and size cut a window out of a file or a pipe, as qemu's raw driver does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCliFromStdin } from "../../../helpers/cli-stdin.js";
import { makeRaw, qemuCompare, runCli, scratch, standardSamples } from "../../../helpers/tools.js";

const MiB = 2 ** 20;
const { sparseMixed } = standardSamples();

async function sampleRaw(t: Parameters<typeof scratch>[0]) {
  const dir = await scratch(t);
  const raw = join(dir, "in.raw");
  await makeRaw(raw, sparseMixed.size, sparseMixed.regions);
  return { dir, raw };
}

test("a raw disk converts from a pipe given its size, detected or named", async (t) => {
  const { dir, raw } = await sampleRaw(t);
  const size = `size=${sparseMixed.size}`;
  for (const [i, args] of [[], ["-f", "raw"]].entries()) {
    for (const format of ["qcow2", "raw"]) {
      const out = join(dir, `out-${i}.${format}`);
      const r = await runCliFromStdin(["convert", "-q", ...args, "-O", format, "--input-option", size, "-", out], {
        path: raw,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await qemuCompare(raw, out, { strict: false })).code, 0, `${args.join(" ")} → ${format}`);
    }
  }
  const info = await runCliFromStdin(["info", "--json", "--input-option", size, "-"], { path: raw });
  assert.equal(info.code, 0, info.stderr);
  const details = JSON.parse(info.stdout);
  assert.equal(details.format, "raw");
  assert.equal(details.virtualSize, sparseMixed.size);
  assert.equal(details.path, "-");
});

test("raw from a pipe without a size is refused, naming the option to give", async (t) => {
  const { dir, raw } = await sampleRaw(t);
  for (const args of [
    ["convert", "-q", "-O", "qcow2", "-", join(dir, "out.qcow2")],
    ["info", "-"],
  ]) {
    const r = await runCliFromStdin(args, { path: raw });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /-: a raw image read from a pipe has no size to read: .*--input-option size=N/);
  }
  assert.deepEqual(await readdir(dir), ["in.raw"]);
});

test("a pipe that ends before the size given is a clear error, with nothing left behind", async (t) => {
  const { dir, raw } = await sampleRaw(t);
  const given = sparseMixed.size + MiB;
  const r = await runCliFromStdin(
    ["convert", "-q", "-O", "qcow2", "--input-option", `size=${given}`, "-", join(dir, "out.qcow2")],
    { path: raw },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`-: the input ended after ${sparseMixed.size} bytes, short of the ${given}`));
  assert.deepEqual(await readdir(dir), ["in.raw"]);
});

test("offset and size cut a window out of a raw file or a pipe, as in qemu", async (t) => {
  const { dir, raw } = await sampleRaw(t);
  const offset = MiB + 512;
  const size = 3 * MiB;
  const expected = join(dir, "expected.raw");
  await writeFile(expected, (await readFile(raw)).subarray(offset, offset + size));
  const options = ["--input-option", `offset=${offset},size=3M`];
  const fromFile = join(dir, "file.qcow2");
  const r1 = await runCli(["convert", "-q", "-f", "raw", ...options, "-O", "qcow2", raw, fromFile], process.env);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal((await qemuCompare(expected, fromFile, { strict: false })).code, 0);
  const fromPipe = join(dir, "pipe.raw");
  const r2 = await runCliFromStdin(["convert", "-q", ...options, "-O", "raw", "-", fromPipe], { path: raw });
  assert.equal(r2.code, 0, r2.stderr);
  assert.ok((await readFile(fromPipe)).equals(await readFile(expected)));
  // Only an offset: the rest of the file.
  const rest = await runCli(["info", "--json", "-f", "raw", "--input-option", `offset=${offset}`, raw], process.env);
  assert.equal(rest.code, 0, rest.stderr);
  assert.equal(JSON.parse(rest.stdout).virtualSize, sparseMixed.size - offset);
});

test("a window reaching past the end of a file is refused before anything is written", async (t) => {
  const { dir, raw } = await sampleRaw(t);
  for (const option of [`offset=${sparseMixed.size + 1}`, `offset=1M,size=${sparseMixed.size}`, "size=12q"]) {
    const r = await runCli(
      ["convert", "-q", "-f", "raw", "--input-option", option, "-O", "qcow2", raw, join(dir, "out.qcow2")],
      process.env,
    );
    assert.equal(r.code, 2, `${option}: ${r.stderr}`);
    assert.match(r.stderr, /raw (offset|size)/, option);
  }
  assert.deepEqual(await readdir(dir), ["in.raw"]);
});
