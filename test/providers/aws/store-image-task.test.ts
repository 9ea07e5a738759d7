/**
 * Storing an AMI in S3 and restoring it, against the EC2 test server written from the Amazon EC2 API Reference
 * (API_CreateStoreImageTask.html, API_DescribeStoreImageTasks.html, API_CreateRestoreImageTask.html) and the
 * real Swift s3api — verified against that server, not against AWS. The object is opaque: the test only checks
 * that it is where the reply said and that the restored AMI's snapshot holds the original's bytes.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { restoreImage, startStoreImage, waitForStoreImage } from "../../../src/providers/aws/store-image-task.js";
import { headObject } from "../../../src/providers/ec2/s3-objects.js";
import { describeImage } from "../../../src/providers/ec2/ec2-images.js";
import { requireSwift } from "../../helpers/swift-s3.js";
import { awsWithSwift } from "../../helpers/aws/aws-with-swift.js";
import { pattern } from "../../helpers/tools.js";

before(requireSwift);

test("CreateStoreImageTask writes the AMI to the bucket; CreateRestoreImageTask makes an AMI of it again", async (t) => {
  const { account, s3, bucket, server, ec2 } = await awsWithSwift(t);
  const snapshot = account.addSnapshotOf(pattern(2 * 1024 * 1024 + 5, 4), { volumeSizeGiB: 2 });
  const image = server.addImageOf(snapshot.id, { name: "to-store", architecture: "arm64", bootMode: "uefi" });
  const stored = await startStoreImage(ec2, image.id, bucket);
  assert.deepEqual(stored, { imageId: image.id, bucket, key: `${image.id}.bin` });
  const states: string[] = [];
  await waitForStoreImage(ec2, stored, {
    timeoutMs: 60_000,
    intervalMs: 10,
    onProgress: (s, p) => states.push(`${s} ${p}`),
  });
  assert.deepEqual(states, ["InProgress 10", "InProgress 60"]);
  assert.ok((await headObject(s3, bucket, stored.key))?.size);
  const restoredId = await restoreImage(ec2, { bucket, key: stored.key, name: "restored" });
  const restored = await describeImage(ec2, restoredId);
  assert.equal(restored.name, "restored");
  assert.equal(restored.bootMode, "uefi");
  const copy = account.snapshots.get(restored.blockDeviceMappings[0]!.snapshotId!)!;
  assert.notEqual(copy.id, snapshot.id);
  assert.deepEqual([...copy.blocks], [...snapshot.blocks]);
});

test("a store task that fails ends the wait with its reason; a restore of a non-archive is refused", async (t) => {
  const { account, bucket, server, ec2 } = await awsWithSwift(t);
  const snapshot = account.addSnapshotOf(pattern(4096, 1));
  const image = server.addImageOf(snapshot.id, { name: "vanishing" });
  const stored = await startStoreImage(ec2, image.id, bucket);
  account.images.delete(image.id);
  await assert.rejects(waitForStoreImage(ec2, stored, { timeoutMs: 60_000, intervalMs: 10 }), {
    code: "EWAIT",
    message: new RegExp(`store task of ${image.id} at EC2 .* failed: The image ${image.id} is gone`),
  });
  await assert.rejects(restoreImage(ec2, { bucket, key: "no-such.bin" }), {
    message: /refused CreateRestoreImageTask of s3:\/\/.*no-such\.bin: InvalidParameterValue/,
  });
});
