/**
 * The whole distributed path through the real API: the API server (createApiServer, unchanged) over the
 * queueing store (PostgreSQL + BullMQ on Redis), 20 clients submitting at once over HTTP, worker processes on two
 * network-namespace hosts that reach Redis and PostgreSQL only by the bridge, and every job read back through
 * the API as succeeded, run once. The workers run bullmq-worker-child.ts's small runner.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BullmqJobQueue } from "../../src/service/bullmq-queue.js";
import type { ServiceJob } from "../../src/service/service-job.js";
import type { PostgresJobStore } from "../../src/service/postgres-job-store.js";
import { queueingJobStore } from "../../src/service/queueing-job-store.js";
import { runsOf, startWorkerProcess, type WorkerProcess } from "../helpers/distributed-run.js";
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
import { postJson, startApi, type ApiFixture } from "./api/api-fixture.js";

let net: NetnsHosts;
let api: ApiFixture;
let store: PostgresJobStore;
let schema: string;
let queue: BullmqJobQueue;
const queueName = uniqueName("jobs");
const workers: WorkerProcess[] = [];

before(async () => {
  await requireRedis();
  net = await makeNetnsHosts(2);
  ({ store, schema } = await openTestPostgresStore());
  queue = BullmqJobQueue.open({ redisUrl, queueName });
  api = await startApi({}, undefined, async () => queueingJobStore(store, queue));
});
after(async () => {
  for (const w of workers) await w.kill().catch(() => {});
  await api?.close(); // closes the store
  await queue?.close();
  if (schema) await dropSchema(schema);
  await net?.close();
});

test(
  "API over the queueing store: 20 clients submit at once, workers on two hosts run each job once",
  { timeout: 180_000 },
  async () => {
    for (const host of net.hosts) {
      workers.push(
        await startWorkerProcess(
          {
            redisUrl: onHost(redisUrl, net.bridge),
            postgresUrl: onHost(postgresUrl, net.bridge),
            schema,
            queueName,
            leaseMs: 5000,
            sleepMs: 50,
            concurrency: 2,
            outDir: api.outDir,
          },
          host,
        ),
      );
    }
    const submitted = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const input = join(api.inDir, `disk-${i}.raw`);
        writeFileSync(input, Buffer.alloc(65536, i));
        const spec = { kind: "convert", input, output: join(api.outDir, `disk-${i}.qcow2`), format: "qcow2" };
        const response = await api.request(
          "/v1/jobs",
          postJson(spec, { headers: { "idempotency-key": `client-${i}` } }),
        );
        assert.equal(response.status, 201);
        return ((await response.json()) as ServiceJob).id;
      }),
    );
    const deadline = Date.now() + 120_000;
    for (const id of submitted) {
      for (;;) {
        const job = (await (await api.request(`/v1/jobs/${id}`)).json()) as ServiceJob;
        if (job.state === "succeeded") break;
        assert.ok(job.state === "queued" || job.state === "running", `job ${id} ended ${job.state}`);
        assert.ok(Date.now() < deadline, `job ${id} still ${job.state} after two minutes`);
        await sleep(100);
      }
      const { runs, dones } = await runsOf(store, id);
      assert.equal(runs.length, 1, `job ${id} ran ${runs.length} times`);
      assert.equal(dones.length, 1);
    }
    const ranOn = new Set(
      await Promise.all(submitted.map(async (id) => (await store.get(id))?.result?.worker as string)),
    );
    assert.equal(ranOn.size, 2, "both hosts ran jobs");
    // BullMQ completes a job just after its store job finishes.
    let counts = await queue.counts();
    for (let i = 0; i < 100 && counts.completed !== 20; i++) counts = (await sleep(100), await queue.counts());
    assert.equal(counts.completed, 20);
    assert.equal(counts.waiting, 0);
  },
);
