/**
 * The bookkeeping of what an in-place output has not written, checked against a byte map over random write
 * sequences (mostly ascending, with rewrites below the frontier, as targets write).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UnwrittenRanges } from "../../../src/formats/io/unwritten-ranges.js";

/** A tiny deterministic generator, so a failure reproduces. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test("the ranges taken are exactly the bytes never written, whatever the order of writes", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    const size = 1 + Math.floor(next() * 4000);
    const written = new Uint8Array(size);
    const ranges = new UnwrittenRanges();
    let frontier = 0;
    for (let i = 0; i < 40; i++) {
      const length = 1 + Math.floor(next() * 200);
      // Three writes in four go at or past the frontier (leaving a gap or not), one goes back below it.
      const start =
        next() < 0.75 ? frontier + Math.floor(next() * 2 * length) : Math.floor(next() * Math.max(1, frontier));
      const end = Math.min(size, start + length);
      if (start >= end) continue;
      ranges.wrote(start, end);
      written.fill(1, start, end);
      frontier = Math.max(frontier, end);
      if (next() < 0.05) for (const [s, e] of ranges.takeGaps()) written.fill(1, s, e); // zeroed early
    }
    const expected = new Uint8Array(size);
    for (const [s, e] of ranges.take(size)) {
      assert.ok(s < e && e <= size, `seed ${seed}: bad range [${s}, ${e})`);
      assert.ok(
        expected.subarray(s, e).every((b) => b === 0),
        `seed ${seed}: ranges overlap at ${s}`,
      );
      expected.fill(1, s, e);
    }
    for (let i = 0; i < size; i++) {
      assert.equal(
        expected[i],
        written[i] ? 0 : 1,
        `seed ${seed}: byte ${i} ${written[i] ? "was" : "was not"} written`,
      );
    }
  }
});

test("taking with an end below the frontier cuts the gaps there and leaves none behind", () => {
  const ranges = new UnwrittenRanges();
  ranges.wrote(10, 20);
  ranges.wrote(30, 40);
  assert.deepEqual(ranges.take(35), [
    [0, 10],
    [20, 30],
  ]);
  assert.deepEqual(ranges.take(50), [[40, 50]]);
});
