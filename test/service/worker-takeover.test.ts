/**
 * Worker processes (src/service/worker-main.ts) sharing nothing but a SQLite job store file and the local stores:
 * one killed with SIGKILL in the middle of a migrate's upload — its host "lost" with it, so none of its temporary
 * files are there for the next — is taken over by a second worker once its lease runs out, which finishes the job
 * exactly once (one image in the destination, no partial upload left, the output identical to the source,
 * attempts == 2). One stopped with SIGTERM hands its job over at once, without waiting for the lease.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { isFinished } from "../../src/service/service-job.js";
import { qemuCompare } from "../helpers/tools.js";
import {
  bigMigrate,
  startWorkerProcess,
  storeFiles,
  storedEvents,
  waitForEvent,
  waitForJob,
  type WorkerProcess,
} from "./helpers/worker-fixtures.js";

const LEASE_MS = 3_000;
const WORKER_ARGS = ["--lease-ms", String(LEASE_MS), "--poll-ms", "50"];

async function stopped(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill("SIGKILL");
  await worker.exited;
}

test("a worker killed with SIGKILL mid-upload: another worker process takes the job over and finishes it once", async (t) => {
  const { dir, db, store, disk, to, job } = await bigMigrate(t, 640);
  const firstState = join(dir, "host-1");
  const first = startWorkerProcess(db, firstState, WORKER_ARGS);
  t.after(() => stopped(first));
  await waitForEvent(store, job.id, (e) => e.event === "progress" && e.phase === "upload" && e.bytes > 0);
  first.child.kill("SIGKILL");
  const killed = await first.exited;
  assert.equal(killed.signal, "SIGKILL");
  const held = await store.get(job.id);
  assert.equal(held?.state, "running", "the killed worker finished nothing");
  assert.equal((await storeFiles(to)).other.length, 1, "its half-made upload is in the destination");
  // The dead host's disk goes with it: the converted file the first worker made is nowhere now.
  await rm(firstState, { recursive: true, force: true });

  const killedAt = Date.now();
  const second = startWorkerProcess(db, join(dir, "host-2"), WORKER_ARGS);
  t.after(() => stopped(second));
  const ended = await waitForJob(store, job.id, (j) => isFinished(j.state), 120_000, "the second worker");
  assert.equal(ended.state, "succeeded", `${JSON.stringify(ended.error)}\n${second.log()}`);
  assert.equal(ended.attempts, 2);
  assert.notEqual(ended.worker, held?.worker, "finished by the second worker");
  assert.ok(Date.now() - killedAt >= LEASE_MS - 1_000, "taken over only once the lease ran out");

  const files = await storeFiles(to);
  assert.equal(files.images.length, 1, "exactly one image in the destination");
  assert.deepEqual(files.other, [], "the half-made upload was removed");
  assert.equal((await qemuCompare(disk, files.images[0]!)).code, 0, "the image holds the source's content");
  const events = await storedEvents(store, job.id);
  assert.equal(events.at(-1)?.event, "done");
  assert.ok(
    events.some((e) => e.event === "message" && /^redoing converted/.test(e.text)),
    "the conversion, whose file was on the dead host, was redone",
  );
  assert.equal(events.filter((e) => e.event === "job").length, 2, "each attempt names the library's job");
});

test("a worker stopped with SIGTERM releases its job, which another worker resumes without waiting", async (t) => {
  const { dir, db, store, disk, to, job } = await bigMigrate(t, 640);
  // A lease far longer than the test: only the release lets the second worker in.
  const args = ["--lease-ms", "600000", "--poll-ms", "50", "--stop-deadline-ms", "0"];
  const first = startWorkerProcess(db, join(dir, "host-1"), args);
  t.after(() => stopped(first));
  await waitForEvent(store, job.id, (e) => e.event === "progress" && e.bytes > 0);
  first.child.kill("SIGTERM");
  const exit = await first.exited;
  assert.equal(exit.code, 0, first.log());
  const second = startWorkerProcess(db, join(dir, "host-1"), args);
  t.after(() => stopped(second));
  const ended = await waitForJob(store, job.id, (j) => isFinished(j.state), 120_000, "the second worker");
  assert.equal(ended.state, "succeeded", `${JSON.stringify(ended.error)}\n${second.log()}`);
  assert.equal(ended.attempts, 2);
  const files = await storeFiles(to);
  assert.equal(files.images.length, 1);
  assert.deepEqual(files.other, []);
  assert.equal((await qemuCompare(disk, files.images[0]!)).code, 0);
  second.child.kill("SIGTERM");
  assert.equal((await second.exited).code, 0, "an idle worker stops at once on SIGTERM");
});
