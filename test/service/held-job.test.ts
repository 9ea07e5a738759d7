/**
 * runHeldJob on a real PostgreSQL store: the callback's outcome recorded, a throw recorded as failed with its
 * code, a cancel request stopping it (cancelled), and a lease taken over by another worker stopping it without
 * anything recorded.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LeaseLostError, runHeldJob, type JobRunnerCallback } from "../../src/service/held-job.js";
import type { JobSpec } from "../../src/service/job-spec.js";
import type { PostgresJobStore } from "../../src/service/postgres-job-store.js";
import { AbortedError, UsageError } from "../../src/util/errors.js";
import { dropSchema, openTestPostgresStore } from "../helpers/service-infra.js";

const SPEC: JobSpec = { kind: "convert", input: "/srv/in/a.raw", output: "/srv/out/a.qcow2", format: "qcow2" };
const LEASE_MS = 600;

let store: PostgresJobStore;
let schema: string;
before(async () => {
  ({ store, schema } = await openTestPostgresStore());
});
after(async () => {
  await store?.close();
  if (schema) await dropSchema(schema);
});

async function held(worker = "w1") {
  const { job } = await store.submit({ spec: SPEC, owner: "alice" });
  return (await store.acquire(job.id, worker, LEASE_MS))!;
}

/** Sleeps past several leases, stopping when the signal aborts; hands back the abort reason. */
const waitForAbort =
  (seen: { reason?: unknown }): JobRunnerCallback =>
  async (_job, { signal }) => {
    try {
      await sleep(LEASE_MS * 10, undefined, { signal });
    } catch {
      seen.reason = signal.reason;
      throw signal.reason;
    }
  };

test("held job: the outcome of the callback is recorded, the lease kept while it runs", async () => {
  const job = await held();
  const ended = await runHeldJob({
    store,
    job,
    worker: "w1",
    leaseMs: LEASE_MS,
    // Longer than a lease: only the renewals keep it.
    run: async () => (await sleep(LEASE_MS * 2), { state: "succeeded", result: { made: "x" } }),
  });
  assert.equal(ended, "finished");
  const done = await store.get(job.id);
  assert.equal(done?.state, "succeeded");
  assert.deepEqual(done?.result, { made: "x" });
  assert.equal(done?.attempts, 1, "never taken over while it ran");
});

test("held job: a throw is recorded as failed with the error's code", async () => {
  const job = await held();
  await runHeldJob({
    store,
    job,
    worker: "w1",
    leaseMs: LEASE_MS,
    run: async () => {
      throw new UsageError("no such format");
    },
  });
  assert.deepEqual((await store.get(job.id))?.error, { code: "EUSAGE", message: "no such format" });
  assert.equal((await store.get(job.id))?.state, "failed");
});

test("held job: a cancel request aborts the callback and the job ends cancelled", async () => {
  const job = await held();
  const seen: { reason?: unknown } = {};
  const running = runHeldJob({ store, job, worker: "w1", leaseMs: LEASE_MS, run: waitForAbort(seen) });
  await store.requestCancel(job.id);
  assert.equal(await running, "finished");
  assert.ok(seen.reason instanceof AbortedError);
  assert.equal((await store.get(job.id))?.state, "cancelled");
});

test("held job: a lease taken over stops the callback, and nothing is recorded", async () => {
  const job = await held();
  const seen: { reason?: unknown } = {};
  const running = runHeldJob({ store, job, worker: "w1", leaseMs: LEASE_MS, run: waitForAbort(seen) });
  await store.release(job.id, "w1");
  assert.equal((await store.acquire(job.id, "w2", 60_000))?.worker, "w2");
  assert.equal(await running, "lost");
  assert.ok(seen.reason instanceof LeaseLostError);
  const now = await store.get(job.id);
  assert.equal(now?.state, "running", "the new holder's, untouched");
  assert.equal(now?.worker, "w2");
});
