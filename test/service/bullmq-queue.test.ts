/**
 * The API side of the BullMQ queue on a real Redis and PostgreSQL: one BullMQ job per store job however often
 * it is submitted or swept, a submission that Redis refuses is kept by the store and queued by the sweep, and
 * a Redis URL's password stays out of errors.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Queue } from "bullmq";
import { BullmqJobQueue, connectRedis } from "../../src/service/bullmq-queue.js";
import { redactUrl } from "../../src/service/connection-url.js";
import { queueingJobStore } from "../../src/service/queueing-job-store.js";
import type { JobSpec } from "../../src/service/job-spec.js";
import type { PostgresJobStore } from "../../src/service/postgres-job-store.js";
import type { ServiceJob } from "../../src/service/service-job.js";
import { dropSchema, openTestPostgresStore, redisUrl, requireRedis, uniqueName } from "../helpers/service-infra.js";

const SPEC: JobSpec = { kind: "convert", input: "/srv/in/a.raw", output: "/srv/out/a.qcow2", format: "qcow2" };

let store: PostgresJobStore;
let schema: string;
before(async () => {
  await requireRedis();
  ({ store, schema } = await openTestPostgresStore());
});
after(async () => {
  await store?.close();
  if (schema) await dropSchema(schema);
});

/** BullMQ's own Queue on the test's queue, to look at what the service's queue did. */
async function withRawQueue<T>(queueName: string, work: (raw: Queue) => Promise<T>): Promise<T> {
  const redis = connectRedis(redisUrl);
  const raw = new Queue(queueName, { connection: redis });
  try {
    return await work(raw);
  } finally {
    await raw.close();
    redis.disconnect();
  }
}

async function withQueue(work: (queue: BullmqJobQueue, queueName: string) => Promise<void>): Promise<void> {
  const queueName = uniqueName("jobs");
  const queue = BullmqJobQueue.open({ redisUrl, queueName });
  try {
    await work(queue, queueName);
  } finally {
    // Drop the test's keys from the shared Redis.
    await withRawQueue(queueName, (raw) => raw.obliterate({ force: true }));
    await queue.close();
  }
}

test("BullMQ queue: a job is queued under its store id, once however often it is submitted", () =>
  withQueue(async (queue) => {
    const first = await queue.submit(store, { spec: SPEC, owner: "alice", idempotencyKey: "retry-me" });
    const again = await queue.submit(store, { spec: SPEC, owner: "alice", idempotencyKey: "retry-me" });
    assert.equal(again.job.id, first.job.id);
    assert.equal(again.created, false);
    await queue.enqueue(first.job);
    const other = await queue.submit(store, { spec: SPEC, owner: "alice" });
    const counts = await queue.counts();
    assert.equal(counts.waiting, 2, "two store jobs, two BullMQ jobs");
    assert.equal(await queue.requeueUnfinished(store), 0, "nothing is missing, nothing is queued again");
    assert.equal((await queue.counts()).waiting, 2);
    assert.notEqual(other.job.id, first.job.id);
  }));

test("BullMQ queue: the sweep queues unfinished store jobs that BullMQ lacks, and not finished ones", () =>
  withQueue(async (queue, queueName) => {
    // Jobs in the store that never reached this queue (another queue name here: as after a Redis that lost them).
    const lost: ServiceJob[] = [];
    for (let i = 0; i < 3; i++) lost.push((await store.submit({ spec: SPEC, owner: "sweep" })).job);
    const finished = (await store.submit({ spec: SPEC, owner: "sweep" })).job;
    await store.requestCancel(finished.id);
    const swept = await queue.requeueUnfinished(store);
    assert.ok(swept >= 3, `swept ${swept}`);
    await withRawQueue(queueName, async (raw) => {
      for (const job of lost) assert.ok(await raw.getJob(job.id), `job ${job.id} is queued`);
      assert.equal(await raw.getJob(finished.id), undefined, "a finished job is not queued");
    });
    assert.equal(await queue.requeueUnfinished(store), 0, "a second sweep finds nothing missing");
  }));

test("BullMQ queue: with Redis unreachable a submission is still stored, queued later by the sweep", async () => {
  const errors: unknown[] = [];
  // Port 9 (discard) on loopback: nothing listens there.
  const refusing = BullmqJobQueue.open({
    redisUrl: "redis://:pw@127.0.0.1:9",
    queueName: uniqueName("jobs"),
    onError: (e) => errors.push(e),
  });
  const t0 = Date.now();
  const { job } = await refusing.submit(store, { spec: SPEC, owner: "offline" });
  assert.ok(Date.now() - t0 < 15_000, "the submission did not wait for Redis");
  assert.equal((await store.get(job.id))?.state, "queued");
  assert.ok(errors.length > 0, "the failed enqueue was reported");
  await refusing.close();
  await withQueue(async (queue, queueName) => {
    queue.sweepEvery(store, 200);
    const deadline = Date.now() + 10_000;
    while (!(await withRawQueue(queueName, (raw) => raw.getJob(job.id)))) {
      assert.ok(Date.now() < deadline, "the periodic sweep queued the stored job");
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});

test("BullMQ queue: the queueing store queues what is submitted and drops what is cancelled while queued", () =>
  withQueue(async (queue, queueName) => {
    const queueing = queueingJobStore(store, queue);
    const { job, created } = await queueing.submit({ spec: SPEC, owner: "api", idempotencyKey: "k" });
    assert.equal(created, true);
    assert.equal((await queueing.submit({ spec: SPEC, owner: "api", idempotencyKey: "k" })).job.id, job.id);
    await withRawQueue(queueName, async (raw) => assert.equal((await raw.getJob(job.id))?.name, "convert"));
    assert.equal((await queueing.get(job.id))?.state, "queued", "other methods are the store's");
    assert.equal((await queueing.list({ limit: 1, owner: "api" })).jobs[0]?.id, job.id);
    assert.equal((await queueing.requestCancel(job.id))?.state, "cancelled");
    await withRawQueue(queueName, async (raw) => assert.equal(await raw.getJob(job.id), undefined));
    assert.equal((await queue.counts()).waiting, 0);
  }));

test("BullMQ queue: Redis URLs are shown without their password", () => {
  assert.equal(redactUrl("redis://:s3cret@10.0.0.1:6379/2"), "redis://:***@10.0.0.1:6379/2");
  assert.equal(redactUrl("postgres://u:s3cret@db/jobs?sslpassword=x"), "postgres://u:***@db/jobs?sslpassword=***");
  assert.doesNotMatch(redactUrl("not a url s3cret"), /s3cret/);
});
