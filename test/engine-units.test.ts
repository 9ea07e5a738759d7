import { test } from "node:test";
import assert from "node:assert/strict";
import { zeroRuns } from "../src/formats/engine/zero-runs.js";
import { parseCreateOptions, sizeInBytes } from "../src/formats/engine/create-options.js";
import { UsageError } from "../src/formats/errors.js";

test("zeroRuns splits at disk-aligned units and merges neighbours", () => {
  const buf = Buffer.alloc(4096 * 4);
  buf[4096 + 7] = 1; // unit 1 has data
  buf[3 * 4096] = 2; // unit 3 has data
  assert.deepEqual(zeroRuns(buf, 0, 4096), [
    { offset: 0, length: 4096, zero: true },
    { offset: 4096, length: 4096, zero: false },
    { offset: 8192, length: 4096, zero: true },
    { offset: 12288, length: 4096, zero: false },
  ]);
  // A buffer starting mid-unit: the first partial unit is judged alone.
  const odd = Buffer.alloc(5000);
  odd[4000] = 9;
  assert.deepEqual(zeroRuns(odd, 100, 4096), [
    { offset: 100, length: 3996, zero: true },
    { offset: 4096, length: 1004, zero: false },
  ]);
});

test("create options parse like qemu-img's -o", () => {
  assert.deepEqual(parseCreateOptions(["cluster_size=64k,compression_type=zstd", "a=b,,c"]), {
    cluster_size: "64k",
    compression_type: "zstd",
    a: "b,c",
  });
  assert.throws(() => parseCreateOptions(["nonsense"]), UsageError);
  assert.throws(() => parseCreateOptions(["a=1,a=2"]), /given twice/);
  assert.equal(sizeInBytes("2M"), 2 * 2 ** 20);
  assert.equal(sizeInBytes("512"), 512);
  assert.equal(sizeInBytes("64kB"), 65536);
  assert.equal(sizeInBytes("12q"), undefined);
  assert.equal(sizeInBytes("99999999999T"), undefined, "beyond a safe integer");
});
