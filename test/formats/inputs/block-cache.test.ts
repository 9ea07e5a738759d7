import { test } from "node:test";
import assert from "node:assert/strict";
import { BlockCache } from "../../../src/formats/inputs/block-cache.js";

interface Load {
  readonly index: number;
  readonly into: Buffer;
  finish(): void;
  fail(): void;
}

/** A cache of 8-byte blocks whose loads the test finishes by hand: block N's bytes are all N + 1. */
function cacheWithLoads(capacity: number) {
  const loads: Load[] = [];
  const cache = new BlockCache(
    8,
    capacity,
    () => 8,
    (index, into) =>
      new Promise<void>((resolve, reject) => {
        const finish = () => {
          into.fill(index + 1);
          resolve();
        };
        loads.push({ index, into, finish, fail: () => reject(new Error(`block ${index} failed`)) });
      }),
  );
  return { cache, loads };
}

const sameMemory = (a: Buffer, b: Buffer) => a.buffer === b.buffer && a.byteOffset === b.byteOffset;
const turn = () => new Promise((resolve) => setImmediate(resolve));

test("block cache: a buffer being filled is never handed on; once its load is over it is reused", async () => {
  const { cache, loads } = cacheWithLoads(1);
  cache.prefetch(0);
  cache.prefetch(1); // the capacity is one block: block 0 leaves the cache while its load runs
  cache.prefetch(2);
  assert.equal(loads.length, 3);
  assert.ok(!sameMemory(loads[2]!.into, loads[0]!.into), "block 0's buffer, still being filled, went to block 2");
  assert.ok(!sameMemory(loads[2]!.into, loads[1]!.into), "block 1's buffer, still being filled, went to block 2");

  loads[0]!.finish();
  await turn();
  cache.prefetch(3);
  assert.ok(sameMemory(loads[3]!.into, loads[0]!.into), "the buffer of a finished block out of the cache is reused");

  const read = cache.with(3, (bytes) => Buffer.from(bytes));
  loads[3]!.finish();
  assert.deepEqual(await read, Buffer.alloc(8, 4));
  assert.equal(loads.length, 4, "a cached block is not loaded again");
});

test("block cache: a read pins its block; a failed load is forgotten and asked again", async () => {
  const { cache, loads } = cacheWithLoads(1);
  const first = cache.with(0, (bytes) => Buffer.from(bytes));
  cache.prefetch(1); // evicts block 0, which the read above still waits for
  loads[0]!.finish();
  assert.deepEqual(await first, Buffer.alloc(8, 1));

  const failing = cache.with(5, () => "never");
  loads.at(-1)!.fail();
  await assert.rejects(failing, /block 5 failed/);
  const again = cache.with(5, (bytes) => bytes[0]);
  assert.equal(loads.at(-1)!.index, 5, "the next read of a failed block loads it again");
  loads.at(-1)!.finish();
  assert.equal(await again, 6);
});
