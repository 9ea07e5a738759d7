/**
 * One host's part of the service, from its configuration (service-config.ts): `chromogenic serve` runs the API
 * and, unless `workers.slots` is 0, workers beside it; `chromogenic worker` runs workers only. Both ways share
 * one code path for a job (job-runner.ts), and the configuration alone says how jobs reach workers:
 *
 * - no `redis`: workers claim jobs from the store itself — a SQLite file (one host) or PostgreSQL (any number
 *   of hosts, claims by SKIP LOCKED);
 * - `redis`: the API queues every job on BullMQ, workers on any host take them from it, the store stays the
 *   record of truth (its lease and BullMQ's lock are the same length: bullmq-worker.ts).
 */
import type { JobStore } from "./job-store.js";
import { runServiceJob } from "./job-runner.js";
import { defaultStoreLocation, openJobStore } from "./open-job-store.js";
import type { ServiceConfig } from "./service-config.js";
import { resolveAllowedFolders } from "./service-paths.js";
import { startWorkerPool } from "./worker-pool.js";
import { wakingJobStore } from "./waking-job-store.js";

const GiB = 2 ** 30;

export interface ServiceHostOptions {
  /** Run the API (serve) or only workers (worker). */
  readonly api: boolean;
  /** One line per thing worth telling the operator. */
  readonly log: (line: string) => void;
}

export interface ServiceHost {
  /** The API's base URL, when this host serves it. */
  readonly url?: string;
  readonly store: JobStore;
  /** Stops taking jobs, gives running ones `workers.stopSeconds`, then closes the API, the queue and the store. */
  close(): Promise<void>;
}

export async function startServiceHost(config: ServiceConfig, options: ServiceHostOptions): Promise<ServiceHost> {
  const { log } = options;
  const store = await openJobStore(config.store ?? defaultStoreLocation());
  const closers: (() => Promise<void>)[] = [() => store.close()];
  const close = async () => {
    for (const step of closers.reverse().splice(0)) await step().catch((e: unknown) => log(`closing: ${String(e)}`));
  };
  try {
    const folders = await resolveAllowedFolders(config.folders);
    const leaseMs = config.workers.leaseSeconds * 1000;
    const slots = config.workers.slots;
    const onError = (e: unknown) => log(`queue: ${(e as Error).message ?? String(e)}`);
    let apiStore = store;
    if (config.redis && options.api) {
      const { BullmqJobQueue } = await import("./bullmq-queue.js");
      const { queueingJobStore } = await import("./queueing-job-store.js");
      const queue = BullmqJobQueue.open({ redisUrl: config.redis, onError, ...queueName(config) });
      closers.push(() => queue.close());
      // Jobs stored while Redis was away are queued once it is back (and at start, after a Redis restart).
      queue.sweepEvery(store);
      apiStore = queueingJobStore(store, queue);
    }
    if (slots > 0) {
      const stopDeadlineMs = config.workers.stopSeconds * 1000;
      if (config.redis) {
        const { BullmqJobWorker } = await import("./bullmq-worker.js");
        const { reachesClouds } = await import("./worker-capacity.js");
        const worker = await BullmqJobWorker.start({
          redisUrl: config.redis,
          ...queueName(config),
          store,
          leaseMs,
          concurrency: slots,
          accepts: reachesClouds(config.workers.clouds),
          run: { held: (held, job, o) => runServiceJob(held, job, { ...o, folders }) },
          onError,
        });
        closers.push(() => worker.close());
        log(`worker ${worker.name}: ${slots} slot(s) on the BullMQ queue`);
      } else {
        const pool = startWorkerPool(store, {
          slots,
          leaseMs,
          folders,
          ...(config.workers.clouds ? { clouds: config.workers.clouds } : {}),
          ...(config.workers.workDir ? { workDir: config.workers.workDir } : {}),
          minFreeBytes: config.workers.minFreeGiB * GiB,
          log: (line) => log(`workers: ${line}`),
        });
        closers.push(() => pool.stop({ deadlineMs: stopDeadlineMs }));
        // The API in this process tells its own workers of a new job at once: no wait for the next poll.
        if (options.api) apiStore = wakingJobStore(apiStore, () => pool.wake());
        log(`workers ${pool.workers.join(", ")} claim from the job store`);
      }
    }
    let url: string | undefined;
    if (options.api) {
      const { createApiServer } = await import("./api/api-server.js");
      const server = await createApiServer({ store: apiStore, config: config.api, folders: config.folders });
      closers.push(() => server.close());
      url = await server.listen();
      log(`API at ${url} (OpenAPI at ${url}/openapi.json, jobs page at ${url}/)`);
    }
    return { ...(url ? { url } : {}), store, close };
  } catch (e) {
    await close();
    throw e;
  }
}

function queueName(config: ServiceConfig): { queueName?: string } {
  return config.queue ? { queueName: config.queue } : {};
}
