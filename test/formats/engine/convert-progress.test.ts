/**
 * The convert pipeline's progress on a sparse disk: a 100 GiB disk holding 64 MiB of data, whose data reads take
 * real time and whose holes take none. Every event's rate is the data's (bytes read over time), never the disk
 * walked over time, so skipping 50 GiB of hole shows no burst of gigabytes a second; the ETA is the data still
 * to read at that rate; `position` walks the whole disk.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { convertImage, countData } from "../../../src/formats/engine/convert.js";
import type { Extent, ImageDetails, ImageSource, ImageTarget } from "../../../src/formats/types.js";
import { ProgressEventSchema, type ProgressEvent } from "../../../src/util/events.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** 100 GiB: 32 MiB of data at 1 GiB, 32 MiB at 99 GiB, holes elsewhere; each 4 MiB read takes 80 ms (two at a time: ~100 MiB/s). */
class SlowSparseSource implements ImageSource {
  readonly format = "raw";
  readonly virtualSize = 100 * GiB;
  private readonly map: Extent[] = [
    { offset: 0, length: GiB, kind: "unallocated" },
    { offset: GiB, length: 32 * MiB, kind: "data" },
    { offset: GiB + 32 * MiB, length: 98 * GiB - 32 * MiB, kind: "unallocated" },
    { offset: 99 * GiB, length: 32 * MiB, kind: "data" },
    { offset: 99 * GiB + 32 * MiB, length: GiB - 32 * MiB, kind: "unallocated" },
  ];

  async read(_offset: number, length: number, into?: Buffer): Promise<Buffer> {
    await new Promise((r) => setTimeout(r, (length / (4 * MiB)) * 80));
    return (into ?? Buffer.alloc(length)).subarray(0, length).fill(1);
  }

  async *extents(): AsyncIterable<Extent> {
    yield* this.map;
  }

  async details(): Promise<ImageDetails> {
    throw new Error("not asked for");
  }

  async close(): Promise<void> {}
}

/** Takes every write and keeps nothing. */
const nowhere: ImageTarget = {
  format: "raw",
  access: "random",
  granularity: 4096,
  writeData: async () => undefined,
  writeZeroes: async () => undefined,
  finish: async () => undefined,
  abort: async () => undefined,
};

async function convertWatched(dataTotal?: Promise<number | undefined>): Promise<ProgressEvent[]> {
  const events: ProgressEvent[] = [];
  await convertImage(new SlowSparseSource(), nowhere, {
    onProgress: (e) => events.push(ProgressEventSchema.parse(e)),
    dataTotal,
    chunkSize: 4 * MiB,
  });
  return events;
}

test("a sparse disk's conversion reports the data's rate and the time its data still needs", async () => {
  const source = new SlowSparseSource();
  assert.equal(await countData(source), 64 * MiB, "the map's data, counted alongside");
  const events = await convertWatched(countData(source));
  assert.ok(events.length >= 4, `events every 200 ms over ~0.6 s of reads: ${events.length}`);
  for (const e of events) {
    // The naive figure, disk walked over time, is above 50 GiB/s here; data moves at ~100 MiB/s.
    assert.ok(e.rate < 400 * MiB, `rate ${e.rate} B/s counts holes`);
    assert.ok(Math.abs(e.rate * e.elapsed - e.bytes) < 1, "rate = data bytes / elapsed");
    assert.ok(e.bytes <= 64 * MiB);
    assert.ok(e.position! >= e.bytes && e.position! <= 100 * GiB);
    if (e.eta !== null && e.eta > 0) {
      assert.equal(e.total, 64 * MiB);
      assert.ok(Math.abs(e.eta - (64 * MiB - e.bytes) / e.rate) < 1e-6, "ETA = data left / data rate");
      assert.ok(e.eta < 5, `ETA ${e.eta} s for at most 64 MiB at ~100 MiB/s`);
    }
  }
  assert.ok(
    events.some((e) => e.position! > 50 * GiB && e.bytes < 64 * MiB),
    "an event past the big hole, data still to come",
  );
  const last = events.at(-1)!;
  assert.deepEqual(
    { bytes: last.bytes, total: last.total, position: last.position, virtualSize: last.virtualSize, eta: last.eta },
    { bytes: 64 * MiB, total: 64 * MiB, position: 100 * GiB, virtualSize: 100 * GiB, eta: 0 },
  );
});

test("without a data total the conversion gives no ETA until it ends, and never a rate from holes", async () => {
  const events = await convertWatched();
  for (const e of events.slice(0, -1)) {
    assert.equal(e.total, null);
    assert.equal(e.eta, null);
    assert.ok(e.rate < 400 * MiB, `rate ${e.rate}`);
  }
  assert.equal(events.at(-1)!.total, 64 * MiB);
});
