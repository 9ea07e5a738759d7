import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFile } from "../src/formats/engine/convert.js";
import { listDrivers } from "../src/formats/registry.js";
import { makeRaw, mixedRegions, run, scratch } from "./helpers/tools.js";

const MiB = 2 ** 20;

/** Every writable format and the option sets that take different write paths. */
const CASES: readonly [string, Record<string, string>, string][] = [
  ["raw", {}, "raw"],
  ["qcow2", {}, "qcow2"],
  ["qcow2", { compression_type: "zlib" }, "qcow2"],
  ["qcow2", { compression_type: "zstd", cluster_size: "4k" }, "qcow2"],
  // 64 KiB clusters: 16 per native batch, each batch reading the pipeline's buffer where it is.
  ["qcow2", { compression_type: "zstd" }, "qcow2"],
  ["vmdk", { subformat: "monolithicSparse" }, "vmdk"],
  ["vmdk", { subformat: "streamOptimized" }, "vmdk"],
  ["vhd", { subformat: "dynamic" }, "vpc"],
  ["vhd", { subformat: "fixed" }, "vpc"],
  ["vdi", {}, "vdi"],
  ["vdi", { static: "on" }, "vdi"],
];

test("every writable format is covered by the buffer-ownership test", () => {
  const writable = listDrivers()
    .filter((d) => d.create)
    .map((d) => d.name)
    .sort();
  assert.deepEqual([...new Set(CASES.map((c) => c[0]))].sort(), writable);
});

for (const [format, createOptions, qemuFormat] of CASES) {
  test(`${format} ${JSON.stringify(createOptions)} never reads a buffer after writeData resolved`, async (t) => {
    // The pipeline recycles read buffers; poisoning each one right after the target accepted it turns any
    // late use (queued compression, batched writes) into a visible corruption.
    const dir = await scratch(t);
    const input = join(dir, "in.raw");
    const size = 23 * MiB + 4096 + 512;
    await makeRaw(input, size, mixedRegions(size));
    const output = join(dir, `out.${format}`);
    await convertFile({
      input,
      output,
      outputFormat: format,
      createOptions,
      chunkSize: 1 * MiB,
      poisonBuffersAfterWrite: true,
    });
    // Named formats: qemu probes a fixed VHD (footer at the end only) as raw.
    const r = await run("qemu-img", ["compare", "-f", "raw", "-F", qemuFormat, input, output]);
    assert.equal(r.code, 0, `${qemuFormat}: ${r.stdout}${r.stderr}`);
  });
}
