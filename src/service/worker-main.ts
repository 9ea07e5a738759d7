/**
 * A worker process: the pool (worker-pool.ts) on a job store until SIGTERM or SIGINT, which stop it gracefully —
 * no more claims, the running jobs given `stopDeadlineMs` to end, then interrupted with their state saved and
 * their leases released for another worker. `runWorkerProcess` is what `chromogenic worker` calls with the store
 * it opened; run directly (`node dist/src/service/worker-main.js --store FILE …`) this file is a worker on a
 * SQLite job store, with no CLI around it.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { JobStore } from "./job-store.js";
import { startWorkerPool, type WorkerPoolOptions } from "./worker-pool.js";

export interface WorkerProcessOptions extends WorkerPoolOptions {
  /** How long running jobs may take to end after SIGTERM before they are interrupted; default 10 s. */
  readonly stopDeadlineMs?: number;
}

/** Runs the pool until SIGTERM/SIGINT, then stops it; resolves once every slot has ended. */
export async function runWorkerProcess(store: JobStore, options: WorkerProcessOptions = {}): Promise<void> {
  const pool = startWorkerPool(store, options);
  options.log?.(`workers ${pool.workers.join(", ")} started`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      options.log?.(`${signal}: no more claims; running jobs have ${options.stopDeadlineMs ?? 10_000} ms`);
      void pool.stop({ deadlineMs: options.stopDeadlineMs ?? 10_000 }).then(resolve);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}

/** `worker-main.js --store FILE [--slots N] [--lease-ms N] [--clouds A,B] [--min-free-bytes N] [--work-dir DIR]`. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      store: { type: "string" },
      slots: { type: "string" },
      "lease-ms": { type: "string" },
      "poll-ms": { type: "string" },
      clouds: { type: "string" },
      "min-free-bytes": { type: "string" },
      "work-dir": { type: "string" },
      "stop-deadline-ms": { type: "string" },
    },
    strict: true,
  });
  if (!values.store) throw new Error("--store FILE: the SQLite job store is needed");
  const number = (name: keyof typeof values) => {
    const text = values[name];
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} ${text}: not a whole number`);
    return n;
  };
  const { SqliteJobStore } = await import("./sqlite-job-store.js");
  const store = await SqliteJobStore.open(values.store);
  try {
    await runWorkerProcess(store, {
      slots: number("slots"),
      leaseMs: number("lease-ms"),
      pollMs: number("poll-ms"),
      clouds: values.clouds?.split(",").filter((c) => c !== ""),
      minFreeBytes: number("min-free-bytes"),
      workDir: values["work-dir"],
      stopDeadlineMs: number("stop-deadline-ms"),
      log: (line) => process.stderr.write(`worker: ${line}\n`),
    });
  } finally {
    await store.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`worker: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
