/**
 * What a job made in a cloud belongs to whoever holds its lease. A worker whose lease is taken over in the middle
 * of an upload to AWS (the fake account of the AWS tests, behind its EBS direct and EC2 servers, each request's
 * signature checked) stops without deleting the snapshot it started: the job's new holder finishes the job (one
 * AMI, one snapshot) or, told to cancel, removes it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { runServiceJob } from "../../src/service/job-runner.js";
import { SqliteJobStore } from "../../src/service/sqlite-job-store.js";
import { awsCloud, hybridDisk } from "../helpers/aws/aws-cli-cloud.js";
import { storeDisk, waitForEvent } from "./helpers/worker-fixtures.js";

/**
 * A migrate from a local store to AWS, claimed by w1, whose lease passes to w2 in the middle of the upload:
 * w1's run ends `lost`; returns the job as w2 holds it.
 */
async function leaseTakenMidUpload(t: Parameters<typeof awsCloud>[0]) {
  // Each block takes a while: the upload is still going when the lease changes hands.
  const { dir, account, env } = await awsCloud(t, { blockLatencyMs: 150 });
  // The fake account's users: set in this process's own environment (os.tmpdir() reads it), and put back after.
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  t.after(() => {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 7);
  const from = join(dir, "store");
  const image = await storeDisk(from, disk, "d");
  const store = await SqliteJobStore.open(join(dir, "jobs.sqlite"));
  t.after(() => store.close());
  const { job } = await store.submit({
    spec: { kind: "migrate", source: { cloud: `local:${from}`, image }, destination: { kind: "cloud", cloud: "aws" } },
    owner: "t",
  });

  const first = runServiceJob(store, (await store.claim("w1", 900))!, { worker: "w1", leaseMs: 900 });
  await waitForEvent(store, job.id, (e) => e.event === "progress" && e.phase === "upload" && e.bytes > 0);
  assert.equal(account.snapshots.size, 1, "the upload's snapshot is started");
  // As when w1 was cut off from the store longer than its lease: w2 holds the job now.
  assert.equal(await store.release(job.id, "w1"), true);
  const taken = (await store.claim("w2", 60_000))!;
  assert.equal(taken.id, job.id);
  assert.equal(await first, "lost");
  assert.equal(account.snapshots.size, 1, "the snapshot is left for the job's new holder");
  assert.equal([...account.snapshots.values()][0]!.status, "pending");
  assert.equal(account.images.size, 0);
  return { store, account, taken, disk };
}

test("a lost lease leaves the started snapshot to the job's new holder, which finishes the job", async (t) => {
  const { store, account, taken } = await leaseTakenMidUpload(t);
  assert.equal(await runServiceJob(store, taken, { worker: "w2", leaseMs: 60_000 }), "succeeded");
  assert.equal(account.images.size, 1, "one AMI");
  assert.equal(account.snapshots.size, 1, "of one snapshot");
  const done = await store.get(taken.id);
  assert.equal(done?.attempts, 2);
  assert.equal((done?.result?.image as { id?: string } | undefined)?.id, [...account.images.keys()][0]);
});

test("the new holder of a job whose lease was lost, told to cancel, removes what it had made", async (t) => {
  const { store, account, taken } = await leaseTakenMidUpload(t);
  await store.requestCancel(taken.id);
  const second = await runServiceJob(store, { ...taken, cancelRequested: true }, { worker: "w2", leaseMs: 60_000 });
  assert.equal(second, "cancelled");
  assert.equal(account.snapshots.size, 0, "the cancel removed what the job had made");
  assert.equal(account.images.size, 0);
  assert.equal((await store.get(taken.id))?.state, "cancelled");
});
