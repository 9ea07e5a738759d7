import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { runDemo } from "../src/workflows/demo.js";
import { qemuCheck, qemuCompare, qemuInfo, run, runOk, scratch } from "./helpers/tools.js";

test("the quick start's job: sample disk → qcow2 (plain, zlib) → raw, and → OVA → qcow2, all verified", async (t) => {
  const dir = await scratch(t);
  const result = await runDemo(join(dir, "demo"));
  assert.equal(result.sample.content, "ext4", "mkfs.ext4 is installed by setup, so the sample holds a real filesystem");
  assert.equal(result.verified, true);
  assert.deepEqual(
    result.steps.map((s) => s.step),
    ["raw → qcow2", "raw → qcow2 (zlib)", "qcow2 (zlib) → raw", "raw → OVA (virtualbox) → qcow2"],
  );
  for (const c of result.steps) {
    assert.equal(c.sha256, result.sourceSha256, c.step);
    if (c.outputFormat === "ova") continue;
    assert.equal((await qemuCompare(result.sample.path, c.output)).code, 0, `${c.output} differs from the sample`);
    if (c.outputFormat === "qcow2") assert.equal((await qemuCheck(c.output)).code, 0);
  }
  // The OVA's disk, read back by qemu-img from the extracted member, is the sample.
  const members = (await runOk("tar", ["tf", join(dir, "demo", "sample.ova")])).trim().split("\n");
  assert.match(members[0]!, /\.ovf$/);
  assert.match(members.at(-1)!, /\.mf$/);
  await runOk("tar", ["xf", join(dir, "demo", "sample.ova"), "-C", join(dir, "demo"), members[1]!]);
  assert.equal((await qemuCompare(result.sample.path, join(dir, "demo", members[1]!))).code, 0);
  const zlib = await qemuInfo(join(dir, "demo", "sample-zlib.qcow2"));
  const specific = (zlib["format-specific"] as { data: { "compression-type": string } }).data;
  assert.equal(specific["compression-type"], "zlib");
  // The round-tripped disk's partition really is a clean ext4 with the planted tree (e2fsprogs' own reader).
  const partition = `${join(dir, "demo", "roundtrip.raw")}?offset=${2 ** 20}`;
  assert.equal((await run("e2fsck", ["-fn", partition])).code, 0);
  assert.equal((await runOk("debugfs", ["-R", "cat /etc/hostname", partition])).trim(), "sample-guest");
});
