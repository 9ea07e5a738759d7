import assert from "node:assert/strict";
import { test } from "node:test";
import { SpareBuffers } from "../../../src/formats/io/spare-buffers.js";

const MiB = 2 ** 20;

test("spare buffers: a buffer given back serves the next take that fits, in whole MiB", () => {
  const spares = new SpareBuffers(2, 8 * MiB);
  const a = spares.take(1.5 * MiB);
  assert.equal(a.length, 1.5 * MiB);
  assert.equal(a.buffer.byteLength, 2 * MiB, "allocated in whole MiB so that similar sizes fit later");
  spares.give(a);
  const b = spares.take(2 * MiB - 100);
  assert.equal(b.buffer, a.buffer, "the kept buffer is reused");
  assert.equal(b.length, 2 * MiB - 100);
  const c = spares.take(1 * MiB);
  assert.notEqual(c.buffer, a.buffer, "a buffer in use is never handed out twice");
});

test("spare buffers: the smallest fitting one is taken; at most maxKept are kept, the largest ones", () => {
  const spares = new SpareBuffers(2, 8 * MiB);
  const [one, three, five] = [1, 3, 5].map((n) => spares.take(n * MiB));
  for (const b of [one!, three!, five!]) spares.give(b);
  // Kept: 3 and 5 MiB (the 1 MiB one made way for a larger one).
  assert.equal(spares.take(0.5 * MiB).buffer, three!.buffer);
  assert.equal(spares.take(2 * MiB).buffer, five!.buffer);
  assert.notEqual(spares.take(0.5 * MiB).buffer, one!.buffer);
});

test("spare buffers: a take larger than maxBytes gets a buffer of its own that is not kept", () => {
  const spares = new SpareBuffers(2, 4 * MiB);
  const big = spares.take(6 * MiB + 1);
  assert.equal(big.length, 6 * MiB + 1);
  spares.give(big);
  assert.notEqual(spares.take(5 * MiB).buffer, big.buffer);
  const capped = spares.take(3.5 * MiB);
  assert.equal(capped.buffer.byteLength, 4 * MiB, "rounding never goes past maxBytes");
});

test("spare buffers: clear() forgets the kept buffers", () => {
  const spares = new SpareBuffers(2, 8 * MiB);
  const a = spares.take(MiB);
  spares.give(a);
  spares.clear();
  assert.notEqual(spares.take(MiB).buffer, a.buffer);
});
