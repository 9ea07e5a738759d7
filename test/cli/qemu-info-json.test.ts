/**
 * `info --output=json` against qemu-img info --output=json on the same files: the same keys, shapes and
 * values, so that scripts written for qemu-img read ours unchanged. A backing file that no longer exists is
 * named, as qemu-img names it, without being opened.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { qemuImg, runCli, scratch } from "../helpers/tools.js";

const made: [string, string[]][] = [
  ["raw.img", ["-f", "raw"]],
  ["v3.qcow2", ["-f", "qcow2"]],
  ["v2.qcow2", ["-f", "qcow2", "-o", "compat=0.10"]],
  ["zstd.qcow2", ["-f", "qcow2", "-o", "compression_type=zstd,cluster_size=128k"]],
  ["sparse.vmdk", ["-f", "vmdk"]],
  ["stream.vmdk", ["-f", "vmdk", "-o", "subformat=streamOptimized"]],
  // A fixed VHD is left out: qemu-img probes it as raw (its footer is at the end), where we see a VHD.
  ["dynamic.vhd", ["-f", "vpc"]],
  ["disk.vhdx", ["-f", "vhdx"]],
  ["disk.vdi", ["-f", "vdi"]],
];

test("info --output=json matches qemu-img info --output=json, image by image", async (t) => {
  const dir = await scratch(t);
  const names = made.map(([name]) => name);
  for (const [name, args] of made) await qemuImg("create", "-q", ...args, join(dir, name), "16M");
  // A child whose backing file is gone: qemu-img info names it without opening it, and so must we.
  await qemuImg("create", "-q", "-f", "qcow2", "-b", "v3.qcow2", "-F", "qcow2", join(dir, "child.qcow2"));
  await qemuImg("create", "-q", "-f", "qcow2", "-b", join(dir, "v2.qcow2"), "-F", "qcow2", join(dir, "abs.qcow2"));
  names.push("child.qcow2", "abs.qcow2");
  const expected = new Map<string, unknown>();
  for (const name of names) {
    expected.set(name, JSON.parse(await qemuImg("info", "--output=json", join(dir, name))));
  }
  for (const name of names) {
    const ours = await runCli(["info", "--output=json", join(dir, name)], process.env);
    assert.equal(ours.code, 0, `${name}: ${ours.stderr}`);
    assert.deepEqual(JSON.parse(ours.stdout), expected.get(name), name);
  }
  await rm(join(dir, "v3.qcow2"));
  const orphan = await runCli(["info", "--output=json", join(dir, "child.qcow2")], process.env);
  assert.equal(orphan.code, 0, orphan.stderr);
  assert.deepEqual(JSON.parse(orphan.stdout), expected.get("child.qcow2"));
  const human = await runCli(["info", join(dir, "child.qcow2")], process.env);
  assert.match(human.stdout, /backing file: v3\.qcow2/);
});

test("info --output takes human or json; an OVA is described by --json", async () => {
  const bad = await runCli(["info", "--output=yaml", "x"], process.env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--output yaml: the choices are human and json/);
});
