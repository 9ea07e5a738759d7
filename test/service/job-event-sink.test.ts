/**
 * The event sink on a real SQLite job store: pushes return at once, every event but superseded progress is
 * stored in the order pushed, the newest progress always among them, and the job's progress summary written at
 * most once per interval, the last one always; a discarded sink stores nothing more.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { JobEventSink } from "../../src/service/job-event-sink.js";
import { SqliteJobStore } from "../../src/service/sqlite-job-store.js";
import type { ProgressEvent } from "../../src/util/events.js";
import { scratch } from "../helpers/tools.js";

function progress(bytes: number): ProgressEvent {
  return { event: "progress", phase: "upload", bytes, total: 10_000, rate: 100, elapsed: 1, eta: 10_000 - bytes };
}

async function heldJob(t: Parameters<typeof scratch>[0]) {
  const store = await SqliteJobStore.open(join(await scratch(t), "jobs.sqlite"));
  t.after(() => store.close());
  const { job } = await store.submit({
    spec: { kind: "convert", input: "/a", output: "/b", format: "raw" },
    owner: "t",
  });
  await store.claim("w", 60_000);
  return { store, id: job.id };
}

test("events are stored in the order pushed; progress a lagging store missed is superseded, never reordered", async (t) => {
  const { store, id } = await heldJob(t);
  const sink = new JobEventSink(store, id, "w", 200);
  const started = performance.now();
  for (let i = 0; i < 50; i++) {
    sink.push({ event: "message", level: "info", text: `m${i}` });
    for (let b = 1; b <= 20; b++) sink.push(progress(i * 20 + b));
  }
  sink.push({ event: "done", command: "convert" });
  assert.ok(performance.now() - started < 200, "pushing does not wait for the store");
  await sink.flush();
  const stored = (await store.events(id, 0, 10_000)).map((e) => e.event);
  const messages = stored.filter((e) => e.event === "message").map((e) => (e.event === "message" ? e.text : ""));
  assert.deepEqual(
    messages,
    Array.from({ length: 50 }, (_, i) => `m${i}`),
    "every message, in order",
  );
  const bytes = stored.flatMap((e) => (e.event === "progress" ? [e.bytes] : []));
  assert.ok(bytes.length < 1000, `superseded progress is not stored (${bytes.length} of 1000)`);
  assert.deepEqual(
    bytes,
    [...bytes].sort((a, b) => a - b),
    "progress never goes back",
  );
  assert.equal(bytes.at(-1), 1000, "the newest progress is stored");
  assert.equal(stored.at(-1)?.event, "done", "the last event pushed is the last stored");
  assert.deepEqual((await store.get(id))?.progress, {
    phase: "upload",
    bytes: 1000,
    total: 10_000,
    bytesPerSecond: 100,
    etaSeconds: 9000,
  });
});

test("the progress summary is written at most once per interval; a discarded sink stores nothing more", async (t) => {
  const { store, id } = await heldJob(t);
  const sink = new JobEventSink(store, id, "w", 300);
  sink.push(progress(1));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await store.get(id))?.progress?.bytes, 1, "the first summary is written at once");
  sink.push(progress(2));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await store.get(id))?.progress?.bytes, 1, "not again within the interval");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await store.get(id))?.progress?.bytes, 2, "the held-back one once the interval is over");
  await sink.flush();
  const count = (await store.events(id, 0, 100)).length;
  sink.discard();
  sink.push({ event: "message", level: "info", text: "late" });
  sink.push(progress(3));
  await sink.flush();
  assert.equal((await store.events(id, 0, 100)).length, count);
  assert.equal((await store.get(id))?.progress?.bytes, 2);
});
