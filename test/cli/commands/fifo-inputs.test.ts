/**
 * A FIFO where an image or a flat VMDK extent is expected: opening one for reading blocks until a writer comes,
 * and a blocked open sits on a libuv threadpool thread that no signal frees, so `info` and `convert` hung for
 * ever. Both must fail at once, naming the file and saying what it is, and leave nothing behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { qemuImg, runCli, scratch } from "../../helpers/tools.js";
import { assertNoResult } from "../../helpers/cli-refusal.js";

/** Seconds a refusal may take (a start of the CLI); a hang is cut at HANG_MS and fails the test. */
const PROMPT_SECONDS = 10;
const HANG_MS = 30_000;

function mkfifo(path: string): void {
  execFileSync("mkfifo", [path]);
}

/** Runs each command, which must fail at once with the one line refusing `fifo`, and print nothing. */
async function refusedAtOnce(commands: readonly string[][], fifo: string): Promise<void> {
  for (const args of commands) {
    const r = await runCli(args, process.env, HANG_MS);
    assert.equal(r.signal, null, `${args.join(" ")} hung and was killed`);
    assert.ok(r.seconds < PROMPT_SECONDS, `${args.join(" ")} took ${r.seconds} s`);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr, `chromogenic: ${fifo}: a FIFO (named pipe), not a regular file or block device\n`);
    assertNoResult(r, args, "ECORRUPT");
  }
}

test("a flat VMDK whose extent is a FIFO: info and convert fail at once, naming the extent", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "disk.vmdk");
  await qemuImg("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", image, "1M");
  const extent = join(dir, "disk-flat.vmdk");
  await rm(extent);
  mkfifo(extent);
  await refusedAtOnce(
    [
      ["info", image],
      ["info", "--json", image],
      ["convert", "-q", "-O", "qcow2", image, join(dir, "out.qcow2")],
      ["convert", "-q", "-f", "vmdk", "-O", "raw", image, join(dir, "out.raw")],
    ],
    extent,
  );
  assert.deepEqual((await readdir(dir)).sort(), ["disk-flat.vmdk", "disk.vmdk"], "nothing written");
});

test("a FIFO given as the image: info and convert fail at once, naming it", async (t) => {
  const dir = await scratch(t);
  const fifo = join(dir, "image.qcow2");
  mkfifo(fifo);
  await refusedAtOnce(
    [
      ["info", fifo],
      ["info", "-f", "qcow2", fifo],
      ["convert", "-q", "-O", "raw", fifo, join(dir, "out.raw")],
      ["convert", "-q", "-f", "raw", "-O", "qcow2", fifo, join(dir, "out.qcow2")],
    ],
    fifo,
  );
  assert.deepEqual(await readdir(dir), ["image.qcow2"], "nothing written");
});
