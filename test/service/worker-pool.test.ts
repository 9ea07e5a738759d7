/**
 * The worker pool in this process on a real SQLite job store, with local stores as clouds: convert and migrate
 * jobs run through it with outputs verified and events stored in order; a job naming a cloud the workers do not
 * reach waits; a cancelled migrate ends cancelled with nothing left in the destination; a stop with a deadline
 * releases the running job, which another pool resumes at once.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SqliteJobStore } from "../../src/service/sqlite-job-store.js";
import { startWorkerPool } from "../../src/service/worker-pool.js";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { qemuCompare, scratch } from "../helpers/tools.js";
import {
  bigMigrate,
  localMigrate,
  randomDisk,
  storeDisk,
  storeFiles,
  storedEvents,
  waitForEvent,
  waitForJob,
} from "./helpers/worker-fixtures.js";
import { isFinished } from "../../src/service/service-job.js";

const MiB = 2 ** 20;
const stateRoot = mkdtempSync(join(tmpdir(), "chromogenic-pool-state-"));
after(() => rmSync(stateRoot, { recursive: true, force: true }));
let tests = 0;

/** A state folder of the test's own (the library's job records): set before the test's pool starts. */
function freshStateDir(): string {
  const dir = join(stateRoot, String(++tests));
  process.env.CHROMOGENIC_STATE_DIR = dir;
  return dir;
}

/** A scratch folder, a state folder and a SQLite job store of the test's own. */
async function storeOfTest(t: Parameters<typeof scratch>[0]) {
  const dir = await scratch(t);
  const stateDir = freshStateDir();
  const store = await SqliteJobStore.open(join(dir, "jobs.sqlite"));
  t.after(() => store.close());
  return { dir, stateDir, store };
}

const FAST = { leaseMs: 1_500, pollMs: 20, idlePollMs: 200, minFreeBytes: 0, progressIntervalMs: 100 };

test("convert and local → local migrate jobs run through the pool: outputs verified, events in order", async (t) => {
  const { dir, stateDir, store } = await storeOfTest(t);
  const sample = join(dir, "sample.raw");
  await makeSampleImage(sample, 64 * MiB);
  const from = join(dir, "a");
  const image = await storeDisk(from, sample, "sample");
  const jobs: { id: string; check: () => Promise<void> }[] = [];
  for (const format of ["qcow2", "vmdk", "vdi"]) {
    const output = join(dir, `out.${format}`);
    const { job } = await store.submit({ spec: { kind: "convert", input: sample, output, format }, owner: "t" });
    jobs.push({ id: job.id, check: async () => assert.equal((await qemuCompare(sample, output)).code, 0) });
  }
  for (const format of ["qcow2", "raw"]) {
    const to = join(dir, `b-${format}`);
    const { job } = await store.submit({ spec: localMigrate(from, image, to, format), owner: "t" });
    jobs.push({
      id: job.id,
      check: async () => {
        const files = await storeFiles(to);
        assert.equal(files.images.length, 1, `one image in ${to}`);
        assert.deepEqual(files.other, []);
        assert.equal((await qemuCompare(sample, files.images[0]!)).code, 0);
      },
    });
  }
  const pool = startWorkerPool(store, { ...FAST, slots: 2 });
  t.after(() => pool.stop());
  assert.equal(new Set(pool.workers).size, 2, "each slot its own worker id");
  for (const { id, check } of jobs) {
    const job = await waitForJob(store, id, (j) => isFinished(j.state));
    assert.equal(job.state, "succeeded", JSON.stringify(job.error));
    assert.equal(job.attempts, 1);
    assert.ok(pool.workers.includes(job.worker!));
    const events = await storedEvents(store, id);
    assert.equal(events.at(-1)?.event, "done");
    await check();
  }
  const migrate = await storedEvents(store, jobs[3]!.id);
  assert.equal(migrate[0]?.event, "job", "a migrate's first event names its library job");
  assert.deepEqual(
    migrate.filter((e) => e.event === "phase").map((e) => `${e.phase}:${e.state}`),
    ["convert:start", "convert:end", "upload:start", "upload:end", "verify:start", "verify:end"],
  );
  await pool.stop();
  assert.deepEqual(await readdir(join(stateDir, "jobs")), [], "the library's job records are gone once stored");
});

test("a job naming a cloud the workers do not reach is left queued; the others run", async (t) => {
  const { dir, store } = await storeOfTest(t);
  const sample = await randomDisk(join(dir, "small.raw"), 4);
  const from = join(dir, "a");
  const image = await storeDisk(from, sample, "small");
  const far = await store.submit({ spec: localMigrate(from, image, "/elsewhere/b"), owner: "t" });
  const near = await store.submit({ spec: localMigrate(from, image, join(dir, "b")), owner: "t" });
  const pool = startWorkerPool(store, { ...FAST, clouds: [`local:${dir}/*`] });
  t.after(() => pool.stop());
  assert.equal((await waitForJob(store, near.job.id, (j) => isFinished(j.state))).state, "succeeded");
  await new Promise((r) => setTimeout(r, 300));
  const waiting = await store.get(far.job.id);
  assert.equal(waiting?.state, "queued");
  assert.equal(waiting?.attempts, 0);
});

test("a worker short of free work space claims nothing until it has room", async (t) => {
  const { dir, store } = await storeOfTest(t);
  const input = await randomDisk(join(dir, "small.raw"), 4);
  const { job } = await store.submit({
    spec: { kind: "convert", input, output: join(dir, "out.qcow2"), format: "qcow2" },
    owner: "t",
  });
  const log: string[] = [];
  const full = startWorkerPool(store, {
    ...FAST,
    workDir: dir,
    minFreeBytes: Number.MAX_SAFE_INTEGER,
    log: (l) => log.push(l),
  });
  await new Promise((r) => setTimeout(r, 500));
  await full.stop();
  assert.equal((await store.get(job.id))?.state, "queued", "nothing claimed without room");
  assert.equal(log.filter((l) => l.startsWith("not claiming")).length, 1, "said once, not at every poll");
  assert.match(log[0]!, new RegExp(`bytes free in ${dir}`));
  const roomy = startWorkerPool(store, { ...FAST, workDir: dir, minFreeBytes: 1 });
  t.after(() => roomy.stop());
  assert.equal((await waitForJob(store, job.id, (j) => isFinished(j.state))).state, "succeeded");
});

test("cancelling a running migrate ends it cancelled, with nothing left in the destination", async (t) => {
  const stateDir = freshStateDir();
  const { store, to, job } = await bigMigrate(t, 512);
  const pool = startWorkerPool(store, FAST);
  t.after(() => pool.stop());
  await waitForEvent(store, job.id, (e) => e.event === "progress" && e.bytes > 0);
  assert.equal((await store.requestCancel(job.id))?.state, "running");
  const ended = await waitForJob(store, job.id, (j) => isFinished(j.state));
  assert.equal(ended.state, "cancelled");
  assert.equal(ended.error?.code, "EABORTED");
  const events = await storedEvents(store, job.id);
  const last = events.at(-1);
  assert.equal(last?.event, "error");
  assert.equal(last.code, "EABORTED");
  const files = await storeFiles(to);
  assert.deepEqual([...files.images, ...files.other], [], "nothing in the destination");
  await pool.stop();
  assert.deepEqual(await readdir(join(stateDir, "jobs")), [], "its temporary files and record are removed");
});

test("stopping with a deadline releases the running job; another pool resumes it at once", async (t) => {
  freshStateDir();
  const { store, disk, to, job } = await bigMigrate(t, 512);
  // A lease far longer than the test: only the release lets the second pool take the job.
  const slow = { ...FAST, leaseMs: 120_000 };
  const first = startWorkerPool(store, slow);
  await waitForEvent(store, job.id, (e) => e.event === "progress" && e.bytes > 0);
  await first.stop({ deadlineMs: 0 });
  const released = await store.get(job.id);
  assert.equal(released?.state, "running");
  assert.notEqual(await store.workflowState(job.id), undefined, "the library's state is in the store");
  const second = startWorkerPool(store, slow);
  t.after(() => second.stop());
  const ended = await waitForJob(store, job.id, (j) => isFinished(j.state), 60_000);
  assert.equal(ended.state, "succeeded", JSON.stringify(ended.error));
  assert.equal(ended.attempts, 2);
  assert.ok(second.workers.includes(ended.worker!));
  const events = await storedEvents(store, job.id);
  assert.ok(events.some((e) => e.event === "message" && /stopped: the job goes to another worker/.test(e.text)));
  const files = await storeFiles(to);
  assert.equal(files.images.length, 1);
  assert.deepEqual(files.other, []);
  assert.equal((await qemuCompare(disk, files.images[0]!)).code, 0);
});
