/**
 * ExportImage and its wait, against the EC2 test server written from the Amazon EC2 API Reference
 * (API_ExportImage.html, API_DescribeExportImageTasks.html, API_CancelExportTask.html) and the VM Import/Export
 * User Guide's object key (start-image-export.html) — verified against that server and the real Swift s3api,
 * not against AWS. The exported objects are converted back with qemu-img and compared with the snapshot.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  exportObjectKey,
  startExportImage,
  waitForExportImage,
  type ExportDiskFormat,
} from "../../../src/providers/aws/export-image-task.js";
import { requireSwift } from "../../helpers/swift-s3.js";
import { awsWithSwift, downloadObject } from "../../helpers/aws/aws-with-swift.js";
import { writeSnapshotRaw } from "../../helpers/aws/snapshot-raw.js";
import type { Ec2AwsServer } from "../../helpers/aws/ec2-aws-server.js";
import { EBS_BLOCK_SIZE, GIB, type FakeAwsAccount } from "../../helpers/aws/fake-aws-account.js";
import { assertSameRaw } from "../../helpers/image-checks.js";
import { pattern, qemuImg, qemuInfo, scratch } from "../../helpers/tools.js";

before(requireSwift);

const MiB = 2 ** 20;

/** A 1 GiB volume with data at its start, in its middle and at its very end, registered as an AMI. */
function imageWithDisk(account: FakeAwsAccount, server: Ec2AwsServer) {
  const snapshot = account.addSnapshotOf(pattern(3 * MiB + 17, 1), { volumeSizeGiB: 1 });
  snapshot.blocks.set(1000, pattern(EBS_BLOCK_SIZE, 2));
  const last = Buffer.alloc(EBS_BLOCK_SIZE);
  pattern(4096, 3).copy(last, EBS_BLOCK_SIZE - 4096);
  snapshot.blocks.set(GIB / EBS_BLOCK_SIZE - 1, last);
  const image = server.addImageOf(snapshot.id, { name: "to-export" });
  return { snapshot, image };
}

for (const [format, qemuFormat, subformat] of [
  ["VMDK", "vmdk", "streamOptimized"],
  ["VHD", "vpc", "dynamic"],
  ["RAW", "raw", undefined],
] as const) {
  test(`ExportImage ${format}: the object at PREFIX + task id + .${format.toLowerCase()} holds the snapshot's disk`, async (t) => {
    const { account, s3, bucket, server, ec2 } = await awsWithSwift(t);
    const dir = await scratch(t);
    const { snapshot, image } = imageWithDisk(account, server);
    const taskId = await startExportImage(ec2, {
      imageId: image.id,
      format,
      bucket,
      prefix: "exports/",
      roleName: "vmimport",
    });
    assert.match(taskId, /^export-ami-[0-9a-f]{17}$/);
    const p = server.requests.find((r) => r.action === "ExportImage")!.params;
    assert.equal(p.get("DiskImageFormat"), format);
    assert.equal(p.get("S3ExportLocation.S3Bucket"), bucket);
    assert.equal(p.get("S3ExportLocation.S3Prefix"), "exports/");
    assert.equal(p.get("RoleName"), "vmimport");
    const seen: string[] = [];
    const result = await waitForExportImage(
      ec2,
      taskId,
      { bucket, prefix: "exports/", format: format as ExportDiskFormat },
      { timeoutMs: 120_000, intervalMs: 10, onProgress: (state, progress) => seen.push(`${state} ${progress}`) },
    );
    assert.deepEqual(result, { taskId, bucket, key: `exports/${taskId}.${format.toLowerCase()}` });
    assert.deepEqual(seen, ["active, validating 0", "active, converting 30", "active, exporting 80"]);
    const object = join(dir, "object");
    await downloadObject(s3, bucket, result.key, object);
    const info = await qemuInfo(object);
    if (format !== "RAW") assert.equal(info.format, qemuFormat);
    if (subformat === "streamOptimized") {
      assert.match(JSON.stringify(info["format-specific"]), /streamOptimized/);
    }
    const back = join(dir, "back.raw");
    await qemuImg("convert", "-f", qemuFormat, "-O", "raw", object, back);
    const expected = join(dir, "snapshot.raw");
    await writeSnapshotRaw(snapshot, expected);
    await assertSameRaw(back, expected);
  });
}

test("exportObjectKey: prefix, task id, a dot and the format in lower case", () => {
  assert.equal(
    exportObjectKey("exports/", "export-ami-1234567890abcdef0", "VMDK"),
    "exports/export-ami-1234567890abcdef0.vmdk",
  );
  assert.equal(exportObjectKey(undefined, "export-ami-1", "RAW"), "export-ami-1.raw");
});

test("an export that fails ends the wait with AWS's status message", async (t) => {
  const { account, bucket, server, ec2 } = await awsWithSwift(t);
  const { snapshot, image } = imageWithDisk(account, server);
  const taskId = await startExportImage(ec2, { imageId: image.id, format: "RAW", bucket });
  account.snapshots.delete(snapshot.id); // gone before the task got to it
  await assert.rejects(
    waitForExportImage(ec2, taskId, { bucket, format: "RAW" }, { timeoutMs: 60_000, intervalMs: 10 }),
    {
      code: "EWAIT",
      message: new RegExp(
        `export task ${taskId} at EC2 .* ended deleted: ClientError: the image ${image.id} or its root snapshot is gone`,
      ),
    },
  );
});

test("a cancelled wait, or one past its bound, cancels the export task", async (t) => {
  const { account, bucket, server, ec2 } = await awsWithSwift(t, { pollsPerStep: 1000 });
  const { image } = imageWithDisk(account, server);
  const first = await startExportImage(ec2, { imageId: image.id, format: "VMDK", bucket });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 150);
  await assert.rejects(
    waitForExportImage(
      ec2,
      first,
      { bucket, format: "VMDK" },
      { timeoutMs: 60_000, intervalMs: 20, signal: controller.signal },
    ),
    { code: "EABORTED" },
  );
  assert.equal(server.requests.filter((r) => r.action === "CancelExportTask")[0]?.params.get("ExportTaskId"), first);
  assert.equal(account.tasks.get(first)!.status, "deleted");
  const second = await startExportImage(ec2, { imageId: image.id, format: "VMDK", bucket });
  await assert.rejects(
    waitForExportImage(ec2, second, { bucket, format: "VMDK" }, { timeoutMs: 200, intervalMs: 50 }),
    {
      code: "EWAIT",
      message: /is still active, validating .* \(the limit\)/,
    },
  );
  assert.equal(account.tasks.get(second)!.status, "deleted");
});

test("ExportImage of a Marketplace image is refused at the call", async (t) => {
  const { account, bucket, server, ec2 } = await awsWithSwift(t);
  const { image } = imageWithDisk(account, server);
  image.productCodes.push("cx1a2b3c4d5e6f7g8h9i0j");
  await assert.rejects(startExportImage(ec2, { imageId: image.id, format: "VMDK", bucket }), {
    message: /refused ExportImage of ami-.*: InvalidParameter: The image .* has product codes/,
  });
});
