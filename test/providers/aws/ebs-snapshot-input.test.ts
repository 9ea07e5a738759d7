/**
 * Reading an EBS snapshot as an engine input, against the EBS direct APIs server written from the reference
 * (test/helpers/aws/ebs-direct-server.ts; verified against that, not against AWS):
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListSnapshotBlocks.html,
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_GetSnapshotBlock.html,
 * https://docs.aws.amazon.com/ebs/latest/userguide/ebsapis-using-checksums.html,
 * https://docs.aws.amazon.com/ebs/latest/userguide/error-retries.html.
 *
 * A snapshot converts to qcow2 and vmdk equal to its raw disk (qemu-img compare), fetching each listed block
 * once and nothing else; a corrupted block, throttling, a deleted snapshot, expired tokens, a listing that does
 * not advance and a wrong secret each end as the reference says they should.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFile } from "../../../src/formats/engine/convert.js";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { EbsConnection } from "../../../src/providers/aws/ebs-connection.js";
import { openSnapshotInput } from "../../../src/providers/aws/ebs-snapshot-input.js";
import { ebsRig, scatteredDisk } from "../../helpers/aws/ebs-fixture.js";
import { blocksOf, EBS_BLOCK_SIZE } from "../../helpers/aws/fake-aws-account.js";
import { qemuCompare, qemuInfo } from "../../helpers/tools.js";

test("a snapshot converts to qcow2 and vmdk equal to its disk, fetching only the listed blocks", async (t) => {
  const rig = await ebsRig(t, { blockLatencyMs: 2 });
  const disk = await scatteredDisk(rig.dir);
  const snapshot = rig.account.addSnapshotOf(disk.bytes);
  const listed = snapshot.blocks.size;
  assert.ok(listed > 200, `the disk should span more than two 100-block pages, has ${listed} blocks`);
  for (const format of ["qcow2", "vmdk"] as const) {
    const before = rig.server.blockGets;
    const input = await openSnapshotInput(rig.ebs, snapshot.id, { pageSize: 100, concurrency: 8 });
    assert.equal(input.size, 1024 ** 3);
    assert.equal(input.allocatedSize, listed * EBS_BLOCK_SIZE);
    const output = join(rig.dir, `out.${format}`);
    await convertFile({ input, inputFormat: "raw", output, outputFormat: format });
    assert.equal(rig.server.blockGets - before, listed, `${format}: one GetSnapshotBlock per listed block`);
    assert.ok(input.stats.maxInFlight > 1, `${format}: blocks were fetched in parallel (${input.stats.maxInFlight})`);
    assert.ok(input.stats.maxInFlight <= 8, `${format}: at most the concurrency asked for`);
    const compare = await qemuCompare(disk.path, output);
    assert.equal(compare.code, 0, `${format}: qemu-img compare: ${compare.stdout}${compare.stderr}`);
    assert.equal((await qemuInfo(output))["virtual-size"], 1024 ** 3);
  }
  assert.ok(rig.server.stats.maxInFlight > 1);
});

test("the raw driver sees the unlisted blocks as unallocated", async (t) => {
  const rig = await ebsRig(t);
  const disk = Buffer.alloc(8 * EBS_BLOCK_SIZE);
  disk.fill(1, 2 * EBS_BLOCK_SIZE, 4 * EBS_BLOCK_SIZE);
  disk.fill(2, 6 * EBS_BLOCK_SIZE + 100, 6 * EBS_BLOCK_SIZE + 200);
  const snapshot = rig.account.addSnapshotOf(disk);
  const { source } = await openImage(await openSnapshotInput(rig.ebs, snapshot.id), { format: "raw" });
  t.after(() => source.close());
  const extents = [];
  for await (const e of source.extents(0, 8 * EBS_BLOCK_SIZE)) extents.push(e);
  assert.deepEqual(extents, [
    { offset: 0, length: 2 * EBS_BLOCK_SIZE, kind: "unallocated" },
    { offset: 2 * EBS_BLOCK_SIZE, length: 2 * EBS_BLOCK_SIZE, kind: "data" },
    { offset: 4 * EBS_BLOCK_SIZE, length: 2 * EBS_BLOCK_SIZE, kind: "unallocated" },
    { offset: 6 * EBS_BLOCK_SIZE, length: EBS_BLOCK_SIZE, kind: "data" },
    { offset: 7 * EBS_BLOCK_SIZE, length: EBS_BLOCK_SIZE, kind: "unallocated" },
  ]);
  const bytes = await source.read(6 * EBS_BLOCK_SIZE, EBS_BLOCK_SIZE);
  assert.ok(bytes.equals(disk.subarray(6 * EBS_BLOCK_SIZE, 7 * EBS_BLOCK_SIZE)));
});

/** A snapshot of a few scattered blocks, read whole through the raw driver. */
async function readAll(rig: Awaited<ReturnType<typeof ebsRig>>, snapshotId: string): Promise<Buffer> {
  const input = await openSnapshotInput(rig.ebs, snapshotId, { pageSize: 100 });
  try {
    const out = Buffer.alloc(64 * EBS_BLOCK_SIZE);
    await input.readExact(0, out.length, out);
    return out;
  } finally {
    await input.close();
  }
}

function smallDisk(): Buffer {
  const disk = Buffer.alloc(64 * EBS_BLOCK_SIZE);
  for (let i = 0; i < 64; i += 3) disk.fill(i + 1, i * EBS_BLOCK_SIZE + 7, i * EBS_BLOCK_SIZE + 9000);
  return disk;
}

test("a block whose data does not match its checksum is fetched again, then refused", async (t) => {
  const rig = await ebsRig(t);
  const disk = smallDisk();
  const snapshot = rig.account.addSnapshotOf(disk);
  // Once: the second fetch is good, and the disk reads right.
  rig.server.knobs.corruptData = new Map([[`${snapshot.id}:6`, 1]]);
  assert.ok((await readAll(rig, snapshot.id)).equals(disk));
  // Always (data, then checksum): a VerificationError naming the snapshot and the block.
  for (const knob of ["corruptData", "corruptChecksum"] as const) {
    rig.server.knobs[knob] = new Map([[`${snapshot.id}:9`, Infinity]]);
    await assert.rejects(readAll(rig, snapshot.id), (e: Error) => {
      assert.equal(e.name, "VerificationError");
      assert.match(e.message, new RegExp(`EBS snapshot ${snapshot.id}: block 9 .*SHA-256`));
      return true;
    });
    rig.server.knobs[knob] = new Map();
  }
});

test("a block whose reply breaks off half way is asked for again", async (t) => {
  const rig = await ebsRig(t);
  const disk = smallDisk();
  const snapshot = rig.account.addSnapshotOf(disk);
  rig.server.knobs.cutBody = new Map([[`${snapshot.id}:3`, 2]]);
  const input = await openSnapshotInput(rig.ebs, snapshot.id);
  t.after(() => input.close());
  const out = Buffer.alloc(disk.length);
  await input.readExact(0, out.length, out);
  assert.ok(out.equals(disk));
  assert.equal(input.stats.blocksRefetched, 2);
  // Always broken: a bounded number of attempts, then a sentence naming the block.
  rig.server.knobs.cutBody = new Map([[`${snapshot.id}:6`, Infinity]]);
  const again = await openSnapshotInput(rig.ebs, snapshot.id);
  t.after(() => again.close());
  await assert.rejects(again.readExact(0, out.length, out), /block 6's data broke off 3 times/);
});

test("throttling is retried with backoff; an endless storm ends in a clear error in bounded time", async (t) => {
  const rig = await ebsRig(t, { throttleEvery: 3 }, { maxAttempts: 6 });
  const disk = smallDisk();
  const snapshot = rig.account.addSnapshotOf(disk);
  assert.ok((await readAll(rig, snapshot.id)).equals(disk));
  assert.ok(rig.ebs.stats.throttled > 3, `throttled requests were retried (${rig.ebs.stats.throttled})`);
  // An endless storm: each call gives up after its 6 attempts, the first (the listing) ends the read.
  rig.server.knobs.throttleEvery = 0;
  rig.server.knobs.throttleStorm = Infinity;
  rig.server.knobs.throttleAs = "SlowDown";
  const before = rig.ebs.stats.retries;
  const started = Date.now();
  await assert.rejects(readAll(rig, snapshot.id), (e: Error) => {
    assert.match(
      e.message,
      /EBS at http:\/\/127\.0\.0\.1:\d+ refused ListSnapshotBlocks snapshot snap-[0-9a-f]+: SlowDown/,
    );
    assert.match(e.message, /gave up after 6 attempts/);
    return true;
  });
  assert.ok(Date.now() - started < 10_000, "the storm ended the read within seconds");
  assert.equal(rig.ebs.stats.retries - before, 5);
});

test("a snapshot deleted while it is read is a clear error", async (t) => {
  const rig = await ebsRig(t);
  const snapshot = rig.account.addSnapshotOf(smallDisk());
  rig.server.knobs.deleteAfterGets = { snapshotId: snapshot.id, after: 5 };
  await assert.rejects(readAll(rig, snapshot.id), (e: Error) => {
    assert.match(
      e.message,
      new RegExp(`EBS snapshot ${snapshot.id}: the snapshot is gone .*ResourceNotFoundException`),
    );
    return true;
  });
});

test("block tokens refused as expired are listed again from the blocks that need them", async (t) => {
  const rig = await ebsRig(t, { tokenLifetimeMs: 3 * 60_000 });
  // 256 written blocks, every other one: three pages of 100, so the tokens come in windows.
  const disk = Buffer.alloc(512 * EBS_BLOCK_SIZE);
  for (let i = 0; i < 512; i += 2) disk.fill((i % 250) + 1, i * EBS_BLOCK_SIZE + 3, i * EBS_BLOCK_SIZE + 5000);
  const snapshot = rig.account.addSnapshotOf(disk);
  const input = await openSnapshotInput(rig.ebs, snapshot.id, { pageSize: 100, concurrency: 12 });
  t.after(() => input.close());
  const out = Buffer.alloc(disk.length);
  const half = disk.length / 2;
  const chunk = 4 * EBS_BLOCK_SIZE;
  for (let at = 0; at < half; at += chunk) await input.readExact(at, chunk, out.subarray(at));
  const listedBefore = input.stats.relistings;
  // The server's clock moves past the tokens' expiry (within the signatures' 5 minutes of skew); the client
  // still believes its tokens good, uses them, is refused, and lists again — with 12 blocks in flight at once.
  const real = rig.account.now;
  rig.account.now = () => real() + 4 * 60_000;
  await Promise.all(
    Array.from({ length: half / chunk }, (_, k) => half + k * chunk).map((at) =>
      input.readExact(at, chunk, out.subarray(at)),
    ),
  );
  assert.ok(out.equals(disk));
  assert.ok(input.stats.relistings > listedBefore, "tokens were listed again");
  assert.ok(input.stats.blocksRefetched >= 1, "a refused token's block was fetched again");
  assert.ok(input.stats.relistings < 20, `a few listings, not one per block (${input.stats.relistings})`);
});

test("a listing whose NextToken does not advance is an error, not an endless loop", async (t) => {
  const rig = await ebsRig(t, { repeatNextToken: true });
  const disk = Buffer.alloc(512 * EBS_BLOCK_SIZE);
  for (let i = 0; i < 512; i += 2) disk[i * EBS_BLOCK_SIZE] = 1;
  const snapshot = rig.account.addSnapshotOf(disk);
  assert.equal(blocksOf(disk).size, 256);
  await assert.rejects(
    openSnapshotInput(rig.ebs, snapshot.id, { pageSize: 100 }),
    /continuation token .* a second time/,
  );
});

test("a wrong secret is refused with SignatureDoesNotMatch, the secret kept out of the message", async (t) => {
  const rig = await ebsRig(t);
  const snapshot = rig.account.addSnapshotOf(smallDisk());
  const wrong = "WRONGwrongWRONGwrongWRONGwrongWRONGwrong";
  const key = [...rig.account.credentials.keys()][0]!;
  const ebs = new EbsConnection({
    cloud: "ebs-test",
    region: rig.account.region,
    endpoint: rig.server.url,
    credentials: { accessKeyId: key, secretAccessKey: wrong },
  });
  t.after(() => ebs.destroy());
  await assert.rejects(openSnapshotInput(ebs, snapshot.id), (e: Error & { code?: string }) => {
    assert.match(e.message, /refused ListSnapshotBlocks snapshot snap-[0-9a-f]+: SignatureDoesNotMatch/);
    assert.equal(e.code, "EAUTH");
    assert.ok(!e.message.includes(wrong) && !e.message.includes(rig.secret));
    return true;
  });
});
