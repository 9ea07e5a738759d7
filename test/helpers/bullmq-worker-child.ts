/**
 * A worker process for the distributed tests: BullmqJobWorker on Redis with the PostgreSQL job store, running a
 * small real runner callback in place of the service's job runner: it records a "run" event, writes a file
 * named after the job in the output folder, sleeps (stopping at a cancel), records a "done" event and answers
 * its worker's name. Events and files are how the tests count runs.
 *
 * argv[2]: JSON {redisUrl, postgresUrl, schema, queueName, leaseMs, sleepMs, concurrency, outDir}. Prints
 * `ready NAME PID` when it takes jobs and `start JOB-ID` as each run begins; SIGTERM closes it gracefully.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BullmqJobWorker } from "../../src/service/bullmq-worker.js";
import type { JobRunnerCallback } from "../../src/service/held-job.js";
import { PostgresJobStore } from "../../src/service/postgres-job-store.js";

export interface WorkerChildConfig {
  readonly redisUrl: string;
  readonly postgresUrl: string;
  readonly schema: string;
  readonly queueName: string;
  readonly leaseMs: number;
  readonly sleepMs: number;
  readonly concurrency: number;
  readonly outDir: string;
}

const config = JSON.parse(process.argv[2]!) as WorkerChildConfig;
const store = await PostgresJobStore.open(config.postgresUrl, { schema: config.schema, poolSize: 4 });

const run: JobRunnerCallback = async (job, held) => {
  await held.store.appendEvent(job.id, { event: "message", level: "info", text: `run by ${held.worker}` });
  process.stdout.write(`start ${job.id}\n`);
  await writeFile(join(config.outDir, `${job.id}.${process.pid}.${Date.now()}`), held.worker);
  await sleep(config.sleepMs, undefined, { signal: held.signal });
  await held.store.appendEvent(job.id, { event: "message", level: "info", text: `done by ${held.worker}` });
  return { state: "succeeded", result: { worker: held.worker } };
};

const worker = await BullmqJobWorker.start({
  redisUrl: config.redisUrl,
  queueName: config.queueName,
  store,
  run,
  leaseMs: config.leaseMs,
  concurrency: config.concurrency,
  // Redis going away is part of the tests: the worker rides it out; a line on stderr says so.
  onError: (e) => process.stderr.write(`worker error: ${(e as Error).message}\n`),
});
process.stdout.write(`ready ${worker.name} ${process.pid}\n`);

process.once("SIGTERM", () => {
  void (async () => {
    await worker.close();
    await store.close();
    process.exit(0);
  })();
});
