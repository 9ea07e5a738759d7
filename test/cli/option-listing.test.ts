/**
 * `chromogenic formats` and `convert -o help` list each writable format's options from its schema, and
 * `convert -o` refuses unknown keys and bad values through the CLI as usage errors that leave nothing behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { getDriver, listDrivers } from "../../src/formats/registry.js";
import { describeCreateOptions } from "../../src/formats/engine/create-option-docs.js";
import { CLI, makeRaw, run, scratch } from "../helpers/tools.js";
import { doneOf } from "../helpers/event-lines.js";

const cli = (...args: string[]) => run(process.execPath, [CLI, ...args]);
const writable = listDrivers().filter((d) => d.create);

test("formats lists every option of every writable format, as its schema documents it", async () => {
  const text = await cli("formats");
  assert.equal(text.code, 0, text.stderr);
  const json = await cli("formats", "--json");
  assert.equal(json.code, 0, json.stderr);
  const listed = doneOf(json.stdout, "formats").formats as { name: string; options: unknown[] }[];
  for (const driver of writable) {
    const docs = await describeCreateOptions(driver);
    assert.deepEqual(listed.find((f) => f.name === driver.name)?.options, JSON.parse(JSON.stringify(docs)));
    for (const o of docs) {
      assert.ok(
        text.stdout.includes(`    -o ${o.name}  ${o.description} (values: ${o.values}; default: ${o.default})\n`),
      );
    }
  }
  assert.match(text.stdout, /^vhdx \(read-only\): .*\n(?! {4}-o)/m);
});

test("convert -o help lists the output format's options, without file names, as qemu-img does", async () => {
  for (const [format, option] of [
    ["qcow2", "help"],
    ["vpc", "help"],
    ["vmdk", "subformat=streamOptimized,?"],
    ["vdi", "?"],
  ] as const) {
    const r = await cli("convert", "-O", format, "-o", option);
    assert.equal(r.code, 0, r.stderr);
    const driver = getDriver(format);
    const docs = await describeCreateOptions(driver);
    assert.equal(
      r.stdout,
      `${driver.name} options (-o key=value,…):\n` +
        docs.map((o) => `    -o ${o.name}  ${o.description} (values: ${o.values}; default: ${o.default})\n`).join(""),
    );
  }
  const raw = await cli("convert", "-O", "raw", "-o", "help");
  assert.deepEqual([raw.code, raw.stdout], [0, "raw takes no -o options\n"]);
  const readOnly = await cli("convert", "-O", "vhdx", "-o", "help");
  assert.equal(readOnly.code, 2);
  assert.match(readOnly.stderr, /format vhdx cannot be written/);
  const noFiles = await cli("convert", "-O", "qcow2");
  assert.equal(noFiles.code, 2);
  assert.match(noFiles.stderr, /convert needs an <input> and an <output>/);
});

test("convert -o: an unknown key or a bad value is a usage error naming what is accepted, before any output", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, 2 ** 20);
  const cases: [string, string, RegExp][] = [
    [
      "qcow2",
      "clusterSize=64k",
      /^chromogenic: qcow2: unknown option\(s\) clusterSize \(known: cluster_size, compression_type, compression_level, refcount_bits, compat\)\n$/,
    ],
    ["qcow2", "cluster_size=3k", /^chromogenic: qcow2: cluster_size=3k is not a power of two from 512 to 2M\n$/],
    ["qcow2", "compression_type=lz4", /qcow2: compression_type=lz4 is not one of none, zlib, zstd/],
    [
      "vmdk",
      "subformat=streamOptimized,adapter_type=nvme",
      /vmdk: adapter_type=nvme is not one of ide, lsilogic, buslogic, legacyESX/,
    ],
    ["vpc", "subformat=sparse", /vhd: subformat=sparse is not one of dynamic, fixed/],
    ["vdi", "static=maybe", /vdi: static=maybe is not on or off/],
    ["raw", "preallocation=full", /raw: unknown option\(s\) preallocation \(raw takes none\)/],
  ];
  for (const [format, options, message] of cases) {
    const r = await cli("convert", "-q", "-O", format, "-o", options, input, join(dir, `out.${format}`));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  assert.deepEqual(await readdir(dir), ["in.raw"]);
});
