import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFile, convertImage } from "../src/formats/engine/convert.js";
import { getDriver, listDrivers } from "../src/formats/registry.js";
import { openImage } from "../src/formats/engine/open-image.js";
import type { OutputFile } from "../src/formats/io/output-file.js";
import { makeRaw, mixedRegions, pattern, run, scratch, textPattern } from "./helpers/tools.js";

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

for (const [format, createOptions] of CASES) {
  test(`${format} ${JSON.stringify(createOptions)}: a write failing mid-conversion fails it, and nothing is written after`, async (t) => {
    const dir = await scratch(t);
    const input = join(dir, "in.raw");
    const size = 40 * MiB;
    // Long data runs, so pipelined targets have several writes in flight when one fails.
    await makeRaw(input, size, [
      { offset: 0, data: textPattern(18 * MiB, 4) },
      { offset: 20 * MiB, data: pattern(16 * MiB, 9) },
    ]);
    const { source } = await openImage(input);
    let written = 0;
    let failed = false;
    let writesAfterFailure = 0;
    // Positional writes and appends (the streamOptimized writer appends) fail alike.
    const write = async (data: Buffer) => {
      if (failed) writesAfterFailure++;
      await new Promise((r) => setImmediate(r));
      written += data.length;
      if (written > 6 * MiB && !failed) {
        failed = true;
        throw new Error("ENOSPC: no space left on device (simulated)");
      }
    };
    const output: OutputFile = {
      seekable: true,
      position: 0,
      append: write,
      truncate: async () => undefined,
      writeAt: write,
    };
    try {
      const target = await getDriver(format).create!(output, size, createOptions);
      await assert.rejects(convertImage(source, target, { chunkSize: 1 * MiB }), /ENOSPC/);
      const atReturn = writesAfterFailure;
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(writesAfterFailure, atReturn, "nothing is written once the conversion has failed");
    } finally {
      await source.close();
    }
  });
}
