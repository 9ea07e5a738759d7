/**
 * The README's first command: `chromogenic demo` puts a generated sample guest in a local image store, cleans
 * it (as root), exports it as an OVA and as qcow2 through the same jobs that serve clouds, and verifies them.
 * Run once as root (cleaning included) and once as an unprivileged user (cleaning skipped, said why).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { runDemo } from "../src/workflows/demo.js";
import { qemuCheck, qemuCompare, qemuImg, run, runOk, scratch } from "./helpers/tools.js";

test("demo as root: sample → local store → clean → OVA and qcow2, all verified", async (t) => {
  const dir = await scratch(t);
  const before = process.env.CHROMOGENIC_STATE_DIR;
  process.env.CHROMOGENIC_STATE_DIR = join(dir, "state");
  t.after(() => {
    if (before === undefined) delete process.env.CHROMOGENIC_STATE_DIR;
    else process.env.CHROMOGENIC_STATE_DIR = before;
  });
  const result = await runDemo(join(dir, "demo"));
  assert.equal(result.sample.content, "ext4", "mkfs.ext4 is installed by setup, so the sample holds a real filesystem");
  assert.ok(result.cleaning, `cleaning ran as root (skipped: ${result.cleaningSkipped})`);
  assert.ok(result.cleaning.changes > 0, "cleaning changed the sample guest");
  assert.notEqual(result.exportedSha256, result.sampleSha256, "the exported disk is the cleaned one");
  assert.equal(result.verified, true);
  assert.deepEqual(
    result.exports.map((e) => e.format),
    ["ova", "qcow2"],
  );
  const qcow2 = result.exports[1]!.output;
  assert.equal((await qemuCheck(qcow2)).code, 0);
  for (const e of result.exports) assert.equal(e.sha256, result.exportedSha256, e.format);
  // The OVA's disk, extracted and read by qemu-img, equals the qcow2 export.
  const ova = result.exports[0]!.output;
  const members = (await runOk("tar", ["tf", ova])).trim().split("\n");
  assert.match(members[0]!, /\.ovf$/);
  assert.match(members.at(-1)!, /\.mf$/);
  await runOk("tar", ["xf", ova, "-C", join(dir, "demo"), members[1]!]);
  assert.equal((await qemuCompare(qcow2, join(dir, "demo", members[1]!))).code, 0);
  // Inside the exported guest (e2fsprogs' own reader): shell history gone, machine-id emptied, hostname kept.
  const raw = join(dir, "exported.raw");
  await qemuImg("convert", "-O", "raw", qcow2, raw);
  const partition = `${raw}?offset=${2 ** 20}`;
  assert.equal((await run("e2fsck", ["-fn", partition])).code, 0);
  assert.equal((await runOk("debugfs", ["-R", "cat /etc/hostname", partition])).trim(), "sample-guest");
  const history = await run("debugfs", ["-R", "stat /root/.bash_history", partition]);
  assert.match(history.stdout + history.stderr, /not found/i, "root's shell history was removed");
  assert.equal(await runOk("debugfs", ["-R", "cat /etc/machine-id", partition]), "", "machine-id was emptied");
  // The sample itself (the store's first image) is untouched: cleaning works on a copy.
  const sampleStored = join(result.store, `${result.sampleImageId}.img`);
  assert.equal((await qemuCompare(result.sample.path, sampleStored)).code, 0);
});

test("demo without root says it skips cleaning and why, and still exports and verifies", async (t) => {
  const dir = await scratch(t);
  await chmod(dir, 0o777);
  const r = await run("setpriv", [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "env",
    "-u",
    "CHROMOGENIC_STATE_DIR",
    `XDG_STATE_HOME=${join(dir, "xdg")}`,
    `TMPDIR=${dir}`,
    process.execPath,
    "bin/chromogenic.js",
    "demo",
    "--dir",
    join(dir, "demo"),
  ]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(
    r.stdout,
    /cleaning skipped: cleaning mounts the guest's filesystems \(loop devices\), which needs root/,
  );
  assert.match(r.stdout, /export ova: .* identical disk/);
  assert.match(r.stdout, /export qcow2: .* identical disk; qemu-img check: clean, qemu-img compare: clean/);
  assert.match(r.stdout, /demo: all outputs verified/);
});
