/**
 * The one progress meter of every phase: rate and ETA count data, never holes, so a sparse disk shows the speed
 * its data moves at and the time its data still needs; events are throttled; a resumed transfer's earlier
 * bytes count in `bytes` but not in the rate. A clock given by the test makes every figure exact.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ProgressMeter } from "../../src/util/progress-meter.js";
import { ProgressEventSchema, type ProgressEvent } from "../../src/util/events.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function metered(options: Partial<ConstructorParameters<typeof ProgressMeter>[0]> = {}) {
  let now = 0;
  const events: ProgressEvent[] = [];
  const meter = new ProgressMeter({
    phase: "convert",
    total: null,
    listener: (e) => events.push(ProgressEventSchema.parse(e)),
    intervalMs: 0,
    now: () => now,
    ...options,
  });
  return { meter, events, at: (ms: number) => (now = ms) };
}

test("a sparse 100 GiB disk with 1 GiB of data: rate and ETA from the data, position through the holes", () => {
  const { meter, events, at } = metered({ virtualSize: 100 * GiB, total: GiB });
  // Half the disk is a hole, walked in a blink: no data moved, so no rate and no ETA yet.
  at(100);
  meter.skip(50 * GiB);
  assert.deepEqual(
    {
      bytes: events.at(-1)!.bytes,
      position: events.at(-1)!.position,
      rate: events.at(-1)!.rate,
      eta: events.at(-1)!.eta,
    },
    { bytes: 0, position: 50 * GiB, rate: 0, eta: null },
  );
  // 512 MiB of data in 2 s: 256 MiB/s, and the 512 MiB left take 2 s more — whatever lies beyond is holes.
  at(2000);
  meter.advance(512 * MiB);
  let e = events.at(-1)!;
  assert.equal(e.rate, 256 * MiB);
  assert.equal(e.eta, 2);
  assert.equal(e.position, 50 * GiB + 512 * MiB);
  // Another hole of 49 GiB: the rate may only fall (time passed, no data moved), never jump to GB/s.
  at(2100);
  meter.skip(49 * GiB);
  e = events.at(-1)!;
  assert.ok(e.rate < 256 * MiB, `the rate after a hole is ${e.rate}`);
  assert.equal(e.bytes, 512 * MiB);
  at(4000);
  meter.advance(512 * MiB);
  meter.complete();
  e = events.at(-1)!;
  assert.deepEqual(
    { bytes: e.bytes, total: e.total, position: e.position, virtualSize: e.virtualSize, eta: e.eta },
    { bytes: GiB, total: GiB, position: 100 * GiB, virtualSize: 100 * GiB, eta: 0 },
  );
  assert.equal(e.rate, GiB / 4);
  for (const ev of events) assert.ok(ev.rate <= 256 * MiB, `no event shows more than the data's rate: ${ev.rate}`);
});

test("without a total there is no ETA until the total is known; the last event's total is what moved", () => {
  const { meter, events, at } = metered({ virtualSize: 10 * GiB });
  at(1000);
  meter.advance(100 * MiB);
  assert.equal(events.at(-1)!.total, null);
  assert.equal(events.at(-1)!.eta, null);
  meter.setTotal(300 * MiB);
  at(2000);
  meter.advance(100 * MiB);
  assert.equal(events.at(-1)!.eta, 1, "100 MiB left at 100 MiB/s");
  meter.complete();
  assert.equal(events.at(-1)!.total, 200 * MiB);
});

test("no ETA in the first half second, when one burst would skew the rate", () => {
  const { meter, events, at } = metered({ total: 100 * MiB });
  at(100);
  meter.advance(10 * MiB);
  assert.equal(events.at(-1)!.eta, null);
  at(1000);
  meter.advance(0);
  assert.equal(events.at(-1)!.eta, 9);
});

test("a resumed transfer counts its earlier bytes in `bytes`, not in the rate; job and phase are named", () => {
  const { meter, events, at } = metered({ phase: "download", job: "export-1", total: 100 * MiB, startBytes: 60 * MiB });
  at(2000);
  meter.set(80 * MiB);
  const e = events.at(-1)!;
  assert.deepEqual(
    { job: e.job, phase: e.phase, bytes: e.bytes, rate: e.rate, eta: e.eta },
    { job: "export-1", phase: "download", bytes: 80 * MiB, rate: 10 * MiB, eta: 2 },
  );
  assert.equal(e.position, undefined, "a transfer walks no disk");
});

test("events are throttled to one per interval, and the last always comes", () => {
  const { meter, events, at } = metered({ intervalMs: 200, total: 1000 });
  for (let ms = 0; ms <= 1000; ms += 10) {
    at(ms);
    meter.advance(1);
  }
  assert.equal(events.length, 6, "at 0, 200, 400, 600, 800 and 1000 ms");
  meter.complete();
  assert.equal(events.length, 7);
  assert.equal(events.at(-1)!.bytes, 101);
});
