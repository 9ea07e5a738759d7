/**
 * Writing a raw disk into a new snapshot, against the EBS direct APIs server written from the reference
 * (test/helpers/aws/ebs-direct-server.ts; verified against that, not against AWS):
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_StartSnapshot.html,
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_PutSnapshotBlock.html,
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_CompleteSnapshot.html (the LINEAR checksum the
 * server recomputes), https://docs.aws.amazon.com/ebs/latest/userguide/writesnapshots.html.
 *
 * The snapshot holds the disk's bytes, only its non-zero blocks are sent, a write interrupted half way
 * continues the same snapshot sending only the rest, and a disk longer than the volume is refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { writeSnapshot } from "../../../src/providers/aws/ebs-snapshot-writer.js";
import { ebsRig, scatteredDisk } from "../../helpers/aws/ebs-fixture.js";
import { blocksOf, EBS_BLOCK_SIZE, GIB } from "../../helpers/aws/fake-aws-account.js";

test("a raw disk written as a snapshot holds its bytes, and only its non-zero blocks were sent", async (t) => {
  // Throttled now and then, as a busy account is: retried, and the result is the same.
  const rig = await ebsRig(t, { throttleEvery: 9, blockLatencyMs: 1 });
  const disk = await scatteredDisk(rig.dir);
  const nonZero = blocksOf(disk.bytes).size;
  let started = "";
  let lastProgress = 0;
  const result = await writeSnapshot(rig.ebs, createReadStream(disk.path, { highWaterMark: 1024 * 1024 }), {
    volumeSizeGiB: 1,
    description: "scattered test disk",
    tags: { purpose: "test" },
    concurrency: 8,
    onStarted: (id) => {
      started = id;
    },
    onProgress: (bytes) => (lastProgress = bytes),
  });
  assert.equal(result.snapshotId, started);
  assert.equal(result.status, "completed");
  assert.equal(result.blocksWritten, nonZero);
  assert.equal(result.bytesSent, nonZero * EBS_BLOCK_SIZE);
  assert.equal(rig.server.blockPuts, nonZero, "one PutSnapshotBlock per non-zero block (throttled ones aside)");
  assert.ok(nonZero < 2048 / 4, `a sparse disk: ${nonZero} blocks of the volume's 2048`);
  assert.equal(lastProgress, GIB);
  assert.ok(rig.ebs.stats.throttled > 0, "some requests were throttled and retried");
  assert.ok(rig.server.stats.maxInFlight > 1 && rig.server.stats.maxInFlight <= 9);
  const snapshot = rig.account.snapshots.get(result.snapshotId)!;
  assert.equal(snapshot.status, "completed");
  assert.equal(snapshot.description, "scattered test disk");
  assert.deepEqual(snapshot.tags, { purpose: "test" });
  assert.ok(rig.account.snapshotBytes(result.snapshotId).equals(disk.bytes), "the snapshot holds the disk");
});

async function* once(bytes: Buffer) {
  yield bytes;
}

test("a write interrupted half way continues the same snapshot and sends only the rest", async (t) => {
  const rig = await ebsRig(t);
  const disk = await scatteredDisk(rig.dir);
  const blocks = blocksOf(disk.bytes);
  let saved: unknown;
  const save = async (state: unknown) => {
    saved = state;
  };
  const stop = new AbortController();
  const started: string[] = [];
  await assert.rejects(
    writeSnapshot(rig.ebs, createReadStream(disk.path), {
      volumeSizeGiB: 1,
      signal: stop.signal,
      resume: { save },
      onStarted: (id) => void started.push(id),
      onProgress: (bytes) => bytes >= GIB / 2 && stop.abort(),
    }),
    /cancelled/,
  );
  const state = saved as { snapshotId: string; nextBlock: number };
  assert.equal(state.snapshotId, started[0]);
  assert.ok(state.nextBlock > 0 && state.nextBlock <= 1024, `saved at block ${state.nextBlock}`);
  const putsBefore = rig.server.blockPuts;
  // Another disk is not continued: its first half differs from what was written.
  const other = Buffer.from(disk.bytes);
  other[10] = other[10]! ^ 1;
  await assert.rejects(
    writeSnapshot(rig.ebs, once(other), { volumeSizeGiB: 1, resume: { state, save } }),
    /are not those written before the interruption/,
  );
  assert.equal(rig.server.blockPuts, putsBefore, "nothing was sent for the wrong disk");
  const result = await writeSnapshot(rig.ebs, createReadStream(disk.path), {
    volumeSizeGiB: 1,
    resume: { state, save },
    onStarted: (id) => void started.push(id),
  });
  assert.equal(result.snapshotId, state.snapshotId, "the same snapshot");
  assert.equal(started.length, 1, "no second snapshot was started");
  const rest = [...blocks.keys()].filter((i) => i >= state.nextBlock).length;
  assert.equal(rig.server.blockPuts - putsBefore, rest, "only the blocks after the saved index were sent");
  assert.equal(result.bytesSent, rest * EBS_BLOCK_SIZE);
  assert.equal(result.blocksWritten, blocks.size);
  assert.ok(rig.account.snapshotBytes(result.snapshotId).equals(disk.bytes));
});

test("a disk longer than the volume is refused, after the snapshot id was handed over for cleaning", async (t) => {
  const rig = await ebsRig(t);
  let started: string | undefined;
  const data = Buffer.alloc(EBS_BLOCK_SIZE, 7);
  const zeros = Buffer.alloc(EBS_BLOCK_SIZE);
  async function* tooLong() {
    for (let i = 0; i < 2048; i++) yield i % 512 ? zeros : data;
    yield Buffer.from([1]);
  }
  await assert.rejects(
    writeSnapshot(rig.ebs, tooLong(), { volumeSizeGiB: 1, onStarted: (id) => void (started = id) }),
    (e: Error) => {
      assert.match(e.message, /the disk is longer than the 1 GiB volume of snapshot snap-[0-9a-f]+/);
      return true;
    },
  );
  assert.ok(started && rig.account.snapshots.get(started)?.status === "pending", "the caller can delete it");
});

test("a snapshot deleted while it is written is a clear error naming it and the block", async (t) => {
  const rig = await ebsRig(t);
  const data = Buffer.alloc(EBS_BLOCK_SIZE, 5);
  async function* blocks() {
    for (let i = 0; i < 64; i++) {
      if (i === 20) rig.account.snapshots.clear();
      yield data;
    }
  }
  await assert.rejects(writeSnapshot(rig.ebs, blocks(), { volumeSizeGiB: 1, concurrency: 4 }), (e: Error) => {
    assert.match(e.message, /refused PutSnapshotBlock snapshot snap-[0-9a-f]+ block \d+: ResourceNotFoundException/);
    return true;
  });
});

test("a ThrottlingException storm is waited out and the snapshot completes", async (t) => {
  const rig = await ebsRig(t, { throttleStorm: 8, throttleAs: "ThrottlingException" });
  const disk = Buffer.alloc(16 * EBS_BLOCK_SIZE);
  disk.fill(9, 3 * EBS_BLOCK_SIZE, 5 * EBS_BLOCK_SIZE);
  const result = await writeSnapshot(rig.ebs, once(disk), { volumeSizeGiB: 1, concurrency: 2 });
  assert.equal(rig.server.stats.throttled, 8);
  assert.equal(result.blocksWritten, 2);
  assert.equal(rig.ebs.stats.throttled, 8);
  assert.ok(rig.account.snapshotBytes(result.snapshotId).subarray(0, disk.length).equals(disk));
});

test("StartSnapshot's client token makes a retried start the same snapshot, and refuses other parameters", async (t) => {
  const rig = await ebsRig(t);
  const started: string[] = [];
  const request = { volumeSizeGiB: 1, clientToken: "job-42", onStarted: (id: string) => void started.push(id) };
  // Two starts with one token (a start retried after its reply was lost): one snapshot, both given its id.
  for (let i = 0; i < 2; i++) {
    const stop = new AbortController();
    async function* stopAfterStart() {
      stop.abort();
      yield Buffer.alloc(EBS_BLOCK_SIZE, 1);
    }
    await assert.rejects(writeSnapshot(rig.ebs, stopAfterStart(), { ...request, signal: stop.signal }), /cancelled/);
  }
  assert.equal(started.length, 2);
  assert.equal(started[0], started[1]);
  assert.equal(rig.account.snapshots.size, 1);
  await assert.rejects(
    writeSnapshot(rig.ebs, once(Buffer.alloc(1)), { ...request, volumeSizeGiB: 2 }),
    /refused StartSnapshot .*ConflictException/,
  );
});
