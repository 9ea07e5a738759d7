/**
 * What the worker suites share: a real SQLite job store in a scratch folder, local image stores (`local:/dir`,
 * no cloud needed) holding a source disk, the stored events of a job read back through the event schema, worker
 * processes (src/service/worker-main.ts) on the same store file, and waiting on the store's state.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalProvider } from "../../../src/providers/local/local-provider.js";
import type { JobStore, StoredEvent } from "../../../src/service/job-store.js";
import { SqliteJobStore } from "../../../src/service/sqlite-job-store.js";
import type { ServiceJob } from "../../../src/service/service-job.js";
import type { JobSpec } from "../../../src/service/job-spec.js";
import type { ChromogenicEvent } from "../../../src/util/events.js";
import { eventLines } from "../../helpers/event-lines.js";
import { runOk, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

/** A raw disk of `mib` MiB of random bytes: every block allocated, nothing a conversion can skip. */
export async function randomDisk(path: string, mib: number): Promise<string> {
  await runOk("dd", ["if=/dev/urandom", `of=${path}`, "bs=1M", `count=${mib}`, "status=none"]);
  return path;
}

/** Uploads `disk` (raw) into the local store at `dir` as `name`; the image's id. */
export async function storeDisk(dir: string, disk: string, name: string): Promise<string> {
  const size = (await stat(disk)).size;
  const image = await new LocalProvider(dir).uploadImage(
    { name, diskFormat: "raw", sizeBytes: size },
    createReadStream(disk, { highWaterMark: 4 * MiB }),
  );
  return image.id;
}

/** A migrate job between two local stores, in the destination's `format`. */
export function localMigrate(from: string, image: string, to: string, format = "qcow2"): JobSpec {
  return {
    kind: "migrate",
    source: { cloud: `local:${from}`, image },
    destination: { kind: "cloud", cloud: `local:${to}`, format },
  };
}

/**
 * A scratch folder with a SQLite job store (`db`, open as `store`), a local store `a` holding a raw disk of `mib`
 * MiB of random bytes, and a queued migrate of it into the local store `to`, as qcow2 (converted into a
 * temporary file, then uploaded): long enough to be caught in the middle.
 */
export async function bigMigrate(t: Parameters<typeof scratch>[0], mib: number) {
  const dir = await scratch(t);
  const db = join(dir, "jobs.sqlite");
  const store = await SqliteJobStore.open(db);
  t.after(() => store.close());
  const disk = await randomDisk(join(dir, "big.raw"), mib);
  const from = join(dir, "a");
  const to = join(dir, "b");
  const image = await storeDisk(from, disk, "big");
  const { job } = await store.submit({ spec: localMigrate(from, image, to, "qcow2"), owner: "t" });
  return { dir, db, store, disk, to, job };
}

/** What a local store's folder holds: its images' data files, and anything else (partial uploads). */
export async function storeFiles(dir: string): Promise<{ images: string[]; other: string[] }> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const images = names.filter((n) => n.endsWith(".img") && !n.startsWith("."));
  const other = names.filter((n) => !n.endsWith(".json") && !images.includes(n));
  return { images: images.map((n) => join(dir, n)), other };
}

/** Every stored event of `id`, checked: numbered 1, 2, 3… and valid as one --json run (one done/error, last). */
export async function storedEvents(store: JobStore, id: string): Promise<ChromogenicEvent[]> {
  const all: StoredEvent[] = [];
  for (;;) {
    const page = await store.events(id, all.at(-1)?.seq ?? 0, 1000);
    if (page.length === 0) break;
    all.push(...page);
  }
  assert.deepEqual(
    all.map((e) => e.seq),
    all.map((_, i) => i + 1),
    "events numbered from 1 without a gap",
  );
  return eventLines(all.map((e) => JSON.stringify(e.event)).join("\n") + "\n");
}

/** Polls `store` until `job` satisfies `done` (or fails the test after `timeoutMs`). */
export async function waitForJob(
  store: JobStore,
  id: string,
  done: (job: ServiceJob) => boolean,
  timeoutMs = 60_000,
  what = "the job to get there",
): Promise<ServiceJob> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const job = await store.get(id);
    if (job && done(job)) return job;
    if (Date.now() > until) assert.fail(`waited ${timeoutMs} ms for ${what}: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves once `id` has stored an event matching `match`. */
export async function waitForEvent(
  store: JobStore,
  id: string,
  match: (event: ChromogenicEvent) => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let seen = 0;
  for (;;) {
    const page = await store.events(id, seen, 1000);
    if (page.some((e) => match(e.event))) return;
    seen = page.at(-1)?.seq ?? seen;
    if (Date.now() > until) assert.fail(`waited ${timeoutMs} ms for an event of job ${id}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** Its stderr so far (the pool's log lines). */
  log(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const WORKER_MAIN = fileURLToPath(new URL("../../../src/service/worker-main.js", import.meta.url));

/** Starts a worker process (worker-main.ts) on the SQLite store `db`, with its own state directory. */
export function startWorkerProcess(db: string, stateDir: string, args: readonly string[] = []): WorkerProcess {
  const child = spawn(process.execPath, [WORKER_MAIN, "--store", db, "--min-free-bytes", "0", ...args], {
    env: { ...process.env, CHROMOGENIC_STATE_DIR: stateDir },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, log: () => log, exited };
}
