/**
 * S3ObjectInput against the real Swift s3api (test/helpers/swift-s3.ts): ranged GetObject reads equal the
 * object's bytes, a sequential read costs one request per block, an object replaced mid-read is an
 * InputChangedError (its ETag is checked on every reply, and If-Match asks S3 to check it too), a missing
 * object is ENOENT, and closing runs the removal once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { ensureBucket } from "../../../src/providers/ec2/s3-bucket.js";
import { openS3ObjectInput } from "../../../src/providers/aws/s3-object-input.js";
import { requireSwift, swiftConnection, testBucket } from "../../helpers/swift-s3.js";
import { pattern } from "../../helpers/tools.js";

const MiB = 2 ** 20;

async function swiftObject(t: { after(fn: () => Promise<void> | void): void }, bytes: Buffer) {
  await requireSwift();
  const s3 = swiftConnection();
  t.after(() => s3.destroy());
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const put = (body: Buffer) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: "disk.raw", Body: body }), { call: "PutObject" });
  await put(bytes);
  return { s3, bucket, put };
}

test("positional reads of an S3 object equal its bytes; a sequential read is one GET per block", async (t) => {
  const bytes = pattern(5 * MiB + 12345, 7);
  const { s3, bucket } = await swiftObject(t, bytes);
  const input = await openS3ObjectInput(s3, bucket, "disk.raw", { blockSize: MiB, cachedBlocks: 3 });
  t.after(() => input.close());
  assert.equal(input.size, bytes.length);
  for (const [position, length] of [
    [0, 512],
    [MiB - 10, 20],
    [3 * MiB + 5, 2 * MiB],
    [bytes.length - 100, 100],
  ] as const) {
    assert.ok((await input.readExact(position, length)).equals(bytes.subarray(position, position + length)));
  }
  await assert.rejects(input.readExact(bytes.length - 10, 11), /beyond the end/);

  // The default cache (8 blocks): room for the block being read and the two read ahead.
  const sequential = await openS3ObjectInput(s3, bucket, "disk.raw", { blockSize: MiB });
  t.after(() => sequential.close());
  const out = Buffer.alloc(bytes.length);
  for (let p = 0; p < bytes.length; p += 256 * 1024) {
    const n = Math.min(256 * 1024, bytes.length - p);
    (await sequential.readExact(p, n)).copy(out, p);
  }
  assert.ok(out.equals(bytes));
  assert.equal(sequential.requests, Math.ceil(bytes.length / MiB), "each block fetched once, read-ahead included");
});

test("an object replaced while it is read is an InputChangedError, not a mix of two disks", async (t) => {
  const bytes = pattern(4 * MiB, 9);
  const { s3, bucket, put } = await swiftObject(t, bytes);
  const input = await openS3ObjectInput(s3, bucket, "disk.raw", { blockSize: MiB, cachedBlocks: 1, readAhead: 0 });
  t.after(() => input.close());
  assert.ok((await input.readExact(0, 1000)).equals(bytes.subarray(0, 1000)));
  await put(pattern(4 * MiB, 10));
  await assert.rejects(input.readExact(2 * MiB, 1000), (e: Error & { code?: string }) => {
    assert.equal(e.code, "ECHANGED", e.message);
    assert.match(e.message, /disk\.raw: the object changed while it was being read/);
    return true;
  });
});

test("a missing object is ENOENT naming it; close runs onClose once", async (t) => {
  const { s3, bucket } = await swiftObject(t, pattern(1000, 1));
  await assert.rejects(openS3ObjectInput(s3, bucket, "nothing.raw"), (e: Error & { code?: string }) => {
    assert.equal(e.code, "ENOENT");
    assert.match(e.message, /nothing\.raw does not exist/);
    return true;
  });
  let closes = 0;
  const input = await openS3ObjectInput(s3, bucket, "disk.raw", {
    onClose: async () => {
      closes++;
    },
  });
  await Promise.all([input.close(), input.close()]);
  await input.close();
  assert.equal(closes, 1);
  await assert.rejects(input.readExact(0, 10), (e: Error & { code?: string }) => e.code === "EABORTED");
});
