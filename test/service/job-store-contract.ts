/**
 * What every job store must do (src/service/job-store.ts), run against each implementation: sqlite-job-store.test.ts
 * and postgres-job-store.test.ts call `jobStoreContract` with a function that opens an empty store.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JobStore } from "../../src/service/job-store.js";
import type { JobSpec } from "../../src/service/job-spec.js";

const SPEC: JobSpec = { kind: "convert", input: "/srv/in/a.raw", output: "/srv/out/a.qcow2", format: "qcow2" };

export function jobStoreContract(name: string, openEmpty: () => Promise<JobStore>): void {
  async function withStore(work: (store: JobStore) => Promise<void>): Promise<void> {
    const store = await openEmpty();
    try {
      await work(store);
    } finally {
      await store.close();
    }
  }

  test(`${name}: a submitted job is queued, listed newest first, and paged by cursor`, () =>
    withStore(async (store) => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await store.submit({ spec: SPEC, owner: "alice" })).job.id);
      const job = await store.get(ids[0]!);
      assert.equal(job?.state, "queued");
      assert.deepEqual(job?.spec, SPEC);
      assert.equal(job?.attempts, 0);
      const first = await store.list({ limit: 2 });
      assert.deepEqual(
        first.jobs.map((j) => j.id),
        [ids[4], ids[3]],
      );
      assert.ok(first.next);
      const second = await store.list({ limit: 2, cursor: first.next });
      assert.deepEqual(
        second.jobs.map((j) => j.id),
        [ids[2], ids[1]],
      );
      const last = await store.list({ limit: 2, cursor: second.next });
      assert.deepEqual(
        last.jobs.map((j) => j.id),
        [ids[0]],
      );
      assert.equal(last.next, undefined);
      assert.equal((await store.list({ limit: 10, owner: "bob" })).jobs.length, 0);
      assert.equal((await store.countByState()).queued, 5);
    }));

  test(`${name}: the same idempotency key of the same owner answers the first job`, () =>
    withStore(async (store) => {
      const a = await store.submit({ spec: SPEC, owner: "alice", idempotencyKey: "k1" });
      const again = await store.submit({ spec: SPEC, owner: "alice", idempotencyKey: "k1" });
      const other = await store.submit({ spec: SPEC, owner: "bob", idempotencyKey: "k1" });
      assert.equal(a.created, true);
      assert.equal(again.created, false);
      assert.equal(again.job.id, a.job.id);
      assert.notEqual(other.job.id, a.job.id);
    }));

  test(`${name}: a job is claimed once; an expired lease lets another worker take it over`, () =>
    withStore(async (store) => {
      const { job } = await store.submit({ spec: SPEC, owner: "alice" });
      const held = await store.claim("w1", 60_000);
      assert.equal(held?.id, job.id);
      assert.equal(held?.state, "running");
      assert.equal(held?.attempts, 1);
      assert.equal(await store.claim("w2", 60_000), undefined, "a held job is not claimed again");
      assert.equal(await store.renew(job.id, "w1", 1), true);
      await new Promise((r) => setTimeout(r, 20));
      const taken = await store.claim("w2", 60_000);
      assert.equal(taken?.id, job.id, "an expired lease is taken over");
      assert.equal(taken?.attempts, 2);
      assert.equal(await store.renew(job.id, "w1", 60_000), false, "the first worker lost it");
      assert.equal(await store.update(job.id, "w1", { workflowState: { x: 1 } }), false);
      assert.equal(await store.finish(job.id, "w1", { state: "succeeded" }), false);
      assert.equal(await store.update(job.id, "w2", { workflowState: { step: "upload" } }), true);
      assert.deepEqual(await store.workflowState(job.id), { step: "upload" });
      assert.equal(await store.finish(job.id, "w2", { state: "succeeded", result: { id: "img" } }), true);
      const done = await store.get(job.id);
      assert.equal(done?.state, "succeeded");
      assert.deepEqual(done?.result, { id: "img" });
      assert.equal(await store.claim("w3", 60_000), undefined);
    }));

  test(`${name}: a released job is taken over at once, its saved state and cancel request kept`, () =>
    withStore(async (store) => {
      const { job } = await store.submit({ spec: SPEC, owner: "alice" });
      await store.claim("w1", 60_000);
      assert.equal(await store.update(job.id, "w1", { workflowState: { step: "convert" } }), true);
      assert.equal(await store.release(job.id, "w2"), false, "only the holder releases");
      assert.equal(await store.release(job.id, "w1"), true);
      assert.equal((await store.requestCancel(job.id))?.state, "running", "a released job is not cancelled blind");
      const taken = await store.claim("w2", 60_000);
      assert.equal(taken?.id, job.id, "taken over without waiting for the lease");
      assert.equal(taken?.attempts, 2);
      assert.equal(taken?.cancelRequested, true);
      assert.deepEqual(await store.workflowState(job.id), { step: "convert" });
      assert.equal(await store.release(job.id, "w1"), false, "the first worker no longer holds it");
      assert.equal(await store.finish(job.id, "w2", { state: "cancelled" }), true);
      assert.equal(await store.release(job.id, "w2"), false, "a finished job is not released");
    }));

  test(`${name}: claim honours what the worker accepts`, () =>
    withStore(async (store) => {
      await store.submit({ spec: SPEC, owner: "alice" });
      const migrate = await store.submit({
        spec: { kind: "migrate", source: { cloud: "a", image: "x" }, destination: { kind: "cloud", cloud: "b" } },
        owner: "alice",
      });
      const taken = await store.claim("w1", 60_000, (j) => j.kind === "migrate");
      assert.equal(taken?.id, migrate.job.id);
    }));

  test(`${name}: cancelling a queued job ends it; a running one is marked for its worker`, () =>
    withStore(async (store) => {
      const queued = await store.submit({ spec: SPEC, owner: "alice" });
      const running = await store.submit({ spec: SPEC, owner: "alice" });
      const first = await store.claim("w1", 60_000);
      assert.equal(first?.id, queued.job.id);
      const second = await store.claim("w1", 60_000);
      assert.equal(second?.id, running.job.id);
      const third = await store.submit({ spec: SPEC, owner: "alice" });
      assert.equal((await store.requestCancel(third.job.id))?.state, "cancelled");
      const marked = await store.requestCancel(running.job.id);
      assert.equal(marked?.state, "running");
      assert.equal(marked?.cancelRequested, true);
      assert.equal(await store.requestCancel("no-such-job"), undefined);
    }));

  test(`${name}: events are numbered from 1 in order and read after a number`, () =>
    withStore(async (store) => {
      const { job } = await store.submit({ spec: SPEC, owner: "alice" });
      for (let i = 0; i < 5; i++) {
        const seq = await store.appendEvent(job.id, { event: "message", level: "info", text: `m${i}` });
        assert.equal(seq, i + 1);
      }
      const after = await store.events(job.id, 2, 2);
      assert.deepEqual(
        after.map((e) => e.seq),
        [3, 4],
      );
      assert.deepEqual(after[0]?.event, { event: "message", level: "info", text: "m2" });
      await assert.rejects(store.appendEvent("no-such-job", { event: "message", level: "info", text: "x" }));
    }));
}
