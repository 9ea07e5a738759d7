/**
 * The service across hosts, for real: BullMQ on Redis (test/infra/redis/start.sh), the job store on PostgreSQL
 * (test/infra/postgres/start.sh), worker processes on two network-namespace "hosts" that reach both only by the
 * bridge address. The runner callback is the small real one of bullmq-worker-child.ts (an event per run and per
 * completion, a file, a sleep); the counts of those events are the proof: every job completes exactly once, a
 * worker killed with kill -9 leaves its job to the other, and a Redis that restarts or crashes mid-run loses
 * nothing and runs nothing twice.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BullmqJobQueue } from "../../src/service/bullmq-queue.js";
import { BullmqJobWorker, type HeldJobRunner } from "../../src/service/bullmq-worker.js";
import type { JobRunnerCallback } from "../../src/service/held-job.js";
import type { JobSpec } from "../../src/service/job-spec.js";
import type { PostgresJobStore } from "../../src/service/postgres-job-store.js";
import type { WorkerChildConfig } from "../helpers/bullmq-worker-child.js";
import { runsOf, startWorkerProcess, waitUntilFinished, type WorkerProcess } from "../helpers/distributed-run.js";
import { makeNetnsHosts, type NetnsHosts } from "../helpers/netns-hosts.js";
import {
  dropSchema,
  onHost,
  openTestPostgresStore,
  postgresUrl,
  redisUrl,
  requireRedis,
  uniqueName,
} from "../helpers/service-infra.js";
import { runOk } from "../helpers/tools.js";

const SPEC: JobSpec = { kind: "convert", input: "/srv/in/a.raw", output: "/srv/out/a.qcow2", format: "qcow2" };

let net: NetnsHosts;
const cleanups: (() => Promise<unknown>)[] = [];
before(async () => {
  await requireRedis();
  net = await makeNetnsHosts(2);
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await net?.close();
});

interface Run {
  store: PostgresJobStore;
  queue: BullmqJobQueue;
  outDir: string;
  config: (overrides: Partial<WorkerChildConfig>) => WorkerChildConfig;
  workers: WorkerProcess[];
}

/** A store schema, a queue name and an output folder of this test's own; workers get the bridge URLs. */
async function setUp(redis = redisUrl, redisOnBridge = onHost(redisUrl, net.bridge)): Promise<Run> {
  const { store, schema } = await openTestPostgresStore();
  const queueName = uniqueName("jobs");
  const queue = BullmqJobQueue.open({ redisUrl: redis, queueName });
  const outDir = mkdtempSync(join(tmpdir(), "chromogenic-dist-"));
  const run: Run = {
    store,
    queue,
    outDir,
    workers: [],
    config: (overrides) => ({
      redisUrl: redisOnBridge,
      postgresUrl: onHost(postgresUrl, net.bridge),
      schema,
      queueName,
      leaseMs: 4000,
      sleepMs: 100,
      concurrency: 2,
      outDir,
      ...overrides,
    }),
  };
  cleanups.push(async () => {
    for (const w of run.workers) await w.kill().catch(() => {});
    await queue.close();
    await store.close();
    await dropSchema(schema);
    rmSync(outDir, { recursive: true, force: true });
  });
  return run;
}

async function startOnBothHosts(run: Run, overrides: Partial<WorkerChildConfig>): Promise<WorkerProcess[]> {
  const started = await Promise.all(net.hosts.map((host) => startWorkerProcess(run.config(overrides), host)));
  run.workers.push(...started);
  return started;
}

async function submitMany(run: Run, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await run.queue.submit(run.store, { spec: SPEC, owner: "alice" })).job.id);
  return ids;
}

/** Every job succeeded, was run once and completed once; the output folder holds one file per run. */
async function assertEachRanOnce(run: Run, ids: readonly string[], except: readonly string[] = []): Promise<void> {
  const files = readdirSync(run.outDir);
  for (const id of ids) {
    if (except.includes(id)) continue;
    const job = await run.store.get(id);
    assert.equal(job?.state, "succeeded", `job ${id}`);
    const { runs, dones } = await runsOf(run.store, id);
    assert.equal(runs.length, 1, `job ${id} ran ${runs.length} times`);
    assert.equal(dones.length, 1, `job ${id} completed ${dones.length} times`);
    assert.equal(job?.attempts, 1, `job ${id} was started ${job?.attempts} times`);
    assert.equal(files.filter((f) => f.startsWith(`${id}.`)).length, 1, `job ${id}'s files`);
  }
}

/** BullMQ ends with every id completed once and nothing waiting, active or failed. */
async function assertQueueDrained(run: Run, count: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  let counts = await run.queue.counts();
  while (counts.completed !== count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    counts = await run.queue.counts();
  }
  assert.deepEqual(
    { completed: counts.completed, waiting: counts.waiting, active: counts.active, failed: counts.failed },
    { completed: count, waiting: 0, active: 0, failed: 0 },
  );
}

test("BullMQ workers on two hosts: 60 jobs each run and complete exactly once", { timeout: 240_000 }, async () => {
  const run = await setUp();
  const ids = await submitMany(run, 60);
  const workers = await startOnBothHosts(run, { sleepMs: 50 });
  const jobs = await waitUntilFinished(run.store, ids, 120_000);
  await assertEachRanOnce(run, ids);
  await assertQueueDrained(run, 60);
  const byWorker = new Map(workers.map((w) => [w.name, jobs.filter((j) => j.result?.worker === w.name).length]));
  for (const w of workers) assert.ok(byWorker.get(w.name)! > 0, `worker ${w.name} on its host ran no job`);
  assert.equal(
    [...byWorker.values()].reduce((a, b) => a + b),
    60,
  );
});

test(
  "BullMQ workers: a worker killed with kill -9 mid-job leaves it to the other, which completes it once",
  { timeout: 240_000 },
  async () => {
    const run = await setUp();
    const leaseMs = 3000;
    const [doomed, survivor] = await startOnBothHosts(run, { leaseMs, sleepMs: 2500, concurrency: 1 });
    const firstStart = doomed!.nextStart();
    const ids = await submitMany(run, 6);
    const killedJob = await firstStart;
    await doomed!.kill();
    const killedAt = Date.now();
    await waitUntilFinished(run.store, ids, 90_000);
    const taken = await run.store.get(killedJob);
    assert.equal(taken?.state, "succeeded");
    assert.equal(taken?.result?.worker, survivor!.name, "the other worker completed it");
    assert.equal(taken?.attempts, 2, "started twice: once on each worker");
    const { runs, dones } = await runsOf(run.store, killedJob);
    assert.deepEqual(runs, [doomed!.name, survivor!.name]);
    assert.deepEqual(dones, [survivor!.name], "completed once, by the survivor");
    assert.ok(survivor!.started.includes(killedJob));
    // Taken over by the lease, not earlier: the survivor started it no sooner than a lease after the kill's
    // last renewal could have run out (a third of a lease before the kill at the latest).
    assert.ok(Date.now() - killedAt >= (leaseMs * 2) / 3 - 200);
    await assertEachRanOnce(run, ids, [killedJob]);
    await assertQueueDrained(run, 6);
  },
);

/** A free TCP port on loopback, for a Redis of the test's own. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test(
  "BullMQ workers: Redis stopped and started, then killed and started, mid-run: nothing lost, nothing twice",
  { timeout: 240_000 },
  async () => {
    // A Redis of this test's own (same script, own folder and port), so that restarting it disturbs no other test.
    const state = mkdtempSync(join(tmpdir(), "chromogenic-redis-"));
    const port = await freePort();
    const env = { ...process.env, REDIS_STATE: state, REDIS_PORT: String(port) };
    const script = "test/infra/redis/start.sh";
    const redisCtl = (...args: string[]) =>
      runOk("env", [...Object.entries(env).map(([k, v]) => `${k}=${v}`), "bash", script, ...args]);
    await redisCtl("start", "--bind", net.bridge);
    cleanups.push(async () => {
      await redisCtl("clean");
      rmSync(state, { recursive: true, force: true });
    });
    const local = `redis://:redis-secret@127.0.0.1:${port}`;
    const run = await setUp(local, onHost(local, net.bridge));
    const ids = await submitMany(run, 40);
    const workers = await startOnBothHosts(run, { sleepMs: 250, leaseMs: 6000 });

    const succeeded = async () => (await run.store.countByState()).succeeded;
    const until = async (n: number) => {
      const deadline = Date.now() + 60_000;
      while ((await succeeded()) < n) {
        assert.ok(Date.now() < deadline, `fewer than ${n} jobs succeeded within a minute`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await until(8);
    await redisCtl("stop");
    await new Promise((r) => setTimeout(r, 1500));
    await redisCtl("start");
    await until(20);
    await redisCtl("kill");
    await new Promise((r) => setTimeout(r, 1500));
    await redisCtl("start");
    await waitUntilFinished(run.store, ids, 120_000);
    assert.ok((await succeeded()) === 40);
    for (const w of workers)
      assert.match(
        w.stderr(),
        /worker error: .*(ECONNREFUSED|Connection is closed|ECONNRESET)/,
        "Redis was away mid-run",
      );
    await assertEachRanOnce(run, ids);
    await assertQueueDrained(run, 40);
  },
);

test(
  "BullMQ workers: cancelling a running job stops its run and ends it cancelled; a queued one never runs",
  { timeout: 240_000 },
  async () => {
    const run = await setUp();
    const worker = await startWorkerProcess(run.config({ sleepMs: 60_000, concurrency: 1 }), net.hosts[0]);
    run.workers.push(worker);
    const started = worker.nextStart();
    const [runningId] = await submitMany(run, 1);
    assert.equal(await started, runningId);
    // The one worker is busy: this job waits in BullMQ.
    const queued = await run.queue.submit(run.store, { spec: SPEC, owner: "alice" });
    assert.equal((await run.queue.counts()).waiting, 1);
    assert.equal((await run.queue.cancel(run.store, queued.job.id))?.state, "cancelled");
    assert.equal((await run.queue.counts()).waiting, 0, "the cancelled queued job left BullMQ");

    const t0 = Date.now();
    const marked = await run.queue.cancel(run.store, runningId!);
    assert.equal(marked?.state, "running");
    assert.equal(marked?.cancelRequested, true);
    const [done] = await waitUntilFinished(run.store, [runningId!], 30_000);
    assert.equal(done?.state, "cancelled");
    assert.ok(Date.now() - t0 < 10_000, "the run stopped at the cancel, not at the end of its sleep");
    const { runs, dones } = await runsOf(run.store, runningId!);
    assert.equal(runs.length, 1);
    assert.equal(dones.length, 0, "the cancelled run did not complete");
    await assertQueueDrained(run, 1);
    assert.deepEqual((await runsOf(run.store, queued.job.id)).runs, [], "the cancelled queued job never ran");
    assert.deepEqual(worker.started, [runningId]);
  },
);

test(
  "BullMQ workers: a job runner that releases its job when its worker closes hands it to another at once",
  { timeout: 120_000 },
  async () => {
    const run = await setUp();
    const { queueName } = run.config({});
    const leaseMs = 30_000;
    const startedBy: string[] = [];
    // The shape of the service's job runner: it keeps its own lease, records its own outcome, and on `stopping`
    // releases the job unfinished.
    const runner: HeldJobRunner = async (store, job, { worker, stopping }) => {
      startedBy.push(worker);
      try {
        await sleep(worker === "stopping-worker" ? 60_000 : 10, undefined, { signal: stopping });
      } catch {
        await run.store.release(job.id, worker);
        return "released";
      }
      return store.finish(job.id, worker, { state: "succeeded", result: { worker } });
    };
    const common = { redisUrl, queueName, store: run.store, run: { held: runner }, leaseMs };
    const stopping = await BullmqJobWorker.start({ ...common, name: "stopping-worker" });
    const [id] = await submitMany(run, 1);
    while (startedBy.length === 0) await sleep(50);
    const other = await BullmqJobWorker.start({ ...common, name: "other-worker" });
    try {
      const t0 = Date.now();
      await stopping.close();
      const [done] = await waitUntilFinished(run.store, [id!], 20_000);
      assert.equal(done?.state, "succeeded");
      assert.equal(done?.result?.worker, "other-worker");
      assert.equal(done?.attempts, 2);
      assert.ok(Date.now() - t0 < leaseMs / 2, "taken over without waiting for the lease to run out");
      assert.deepEqual(startedBy, ["stopping-worker", "other-worker"]);
      await assertQueueDrained(run, 1);
    } finally {
      await other.close();
    }
  },
);

test(
  "BullMQ workers: a job a worker does not accept goes back to the queue for one that does",
  { timeout: 60_000 },
  async () => {
    const run = await setUp();
    const { queueName } = run.config({});
    const ranBy: string[] = [];
    const recordAs =
      (who: string): JobRunnerCallback =>
      async () => {
        ranBy.push(who);
      };
    const common = { redisUrl, queueName, store: run.store, leaseMs: 5000 };
    const migrateOnly = await BullmqJobWorker.start({
      ...common,
      name: "migrate-only",
      run: recordAs("migrate-only"),
      accepts: (job) => job.kind === "migrate",
    });
    let any: BullmqJobWorker | undefined;
    try {
      const [id] = await submitMany(run, 1);
      await sleep(2000);
      assert.equal((await run.store.get(id!))?.state, "queued", "the worker that does not accept it left it queued");
      any = await BullmqJobWorker.start({ ...common, name: "any", run: recordAs("any") });
      const [done] = await waitUntilFinished(run.store, [id!], 20_000);
      assert.equal(done?.state, "succeeded");
      assert.deepEqual(ranBy, ["any"]);
      await assertQueueDrained(run, 1);
    } finally {
      await migrateOnly.close();
      await any?.close();
    }
  },
);
