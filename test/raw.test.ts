import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { stat } from "node:fs/promises";
import { openImage } from "../src/formats/engine/open-image.js";
import { convertFile } from "../src/formats/engine/convert.js";
import { seekDataAvailable } from "../src/formats/io/seek-data.js";
import { makeRaw, mixedRegions, qemuCompare, scratch, pattern, runOk } from "./helpers/tools.js";

const MiB = 2 ** 20;

test("the SEEK_DATA addon is built (CI must not silently fall back to zero scans)", () => {
  assert.equal(seekDataAvailable(), true);
});

test("raw source reports holes and data from the filesystem", async (t) => {
  const dir = await scratch(t);
  const path = join(dir, "disk.raw");
  await makeRaw(path, 16 * MiB, [
    { offset: 2 * MiB, data: pattern(MiB) },
    { offset: 10 * MiB, data: pattern(4096, 3) },
  ]);
  const { driver, source } = await openImage(path);
  try {
    assert.equal(driver.name, "raw");
    assert.equal(source.virtualSize, 16 * MiB);
    const extents = [];
    for await (const e of source.extents()) extents.push(e);
    const data = extents.filter((e) => e.kind === "data");
    assert.deepEqual(
      data.map((e) => [e.offset, e.length]),
      [
        [2 * MiB, MiB],
        [10 * MiB, 4096],
      ],
    );
    // The map covers the disk exactly, in order.
    let pos = 0;
    for (const e of extents) {
      assert.equal(e.offset, pos);
      pos += e.length;
    }
    assert.equal(pos, 16 * MiB);
    assert.deepEqual(await source.read(2 * MiB, 100), pattern(MiB).subarray(0, 100));
    await assert.rejects(source.read(16 * MiB - 10, 20), RangeError);
  } finally {
    await source.close();
  }
});

test("raw → raw keeps the disk identical and the output sparse", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  const output = join(dir, "out.raw");
  const size = 64 * MiB + 4096 + 512;
  await makeRaw(input, size, mixedRegions(size));
  const result = await convertFile({ input, output, outputFormat: "raw" });
  assert.equal(result.virtualSize, size);
  assert.equal((await qemuCompare(input, output)).code, 0);
  const st = await stat(output);
  assert.equal(st.size, size);
  // The explicit 256 KiB of written zeros become a hole: allocated bytes below the input's.
  assert.ok(st.blocks * 512 < (await stat(input)).blocks * 512, "zero runs written as data should become holes");
});

test("a fully dense raw image (no holes at all) converts identically", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "dense.raw");
  await runOk("dd", ["if=/dev/urandom", `of=${input}`, "bs=1M", "count=9", "status=none"]);
  const output = join(dir, "dense-out.raw");
  await convertFile({ input, output, outputFormat: "raw" });
  assert.equal((await qemuCompare(input, output)).code, 0);
});
