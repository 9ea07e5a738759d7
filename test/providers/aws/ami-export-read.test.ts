/**
 * Reading an AMI through ExportImage, at the library level, where the run can be cancelled mid-task: against
 * the EC2 server written from the AWS API reference (test/helpers/aws/ec2-aws-server.ts:
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ExportImage.html,
 * API_DescribeExportImageTasks.html, API_CancelExportTask.html) writing into the real Swift s3api. Not
 * against AWS. The CLI path (equal output, object removed or kept) is test/workflows/aws-vm-import-export.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { describeImage } from "../../../src/providers/ec2/ec2-images.js";
import { listObjects } from "../../../src/providers/ec2/s3-listing.js";
import { openExportedAmi } from "../../../src/providers/aws/ami-export-read.js";
import { awsSettings } from "../../../src/providers/aws/aws-settings.js";
import { awsWithSwift } from "../../helpers/aws/aws-with-swift.js";
import { requireSwift } from "../../helpers/swift-s3.js";
import { makeRaw, pattern, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

async function exportFixture(t: { after(fn: () => Promise<void> | void): void }, pollsPerStep: number) {
  await requireSwift();
  const dir = await scratch(t, "chromo-export-read-");
  const { account, s3, bucket, server, ec2 } = await awsWithSwift(t, { pollsPerStep });
  const disk = join(dir, "disk.raw");
  await makeRaw(disk, 8 * MiB, [{ offset: MiB, data: pattern(MiB, 2) }]);
  const fake = account.addImageOfFile(disk, "src", "legacy-bios");
  const image = await describeImage(ec2, fake.id);
  const settings = awsSettings({ CHROMOGENIC_AWS_BUCKET: bucket, CHROMOGENIC_AWS_TASK_POLL_SECONDS: "0.02" });
  const keys = async () => {
    const all: string[] = [];
    for await (const o of listObjects(s3, bucket, "")) all.push(o.key);
    return all;
  };
  return { account, s3, server, ec2, image, settings, keys, fake };
}

test("a read cancelled while AWS exports cancels the task and leaves no object", async (t) => {
  const { account, s3, server, ec2, image, settings, keys } = await exportFixture(t, 1000);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 300);
  await assert.rejects(
    openExportedAmi({ ec2, s3, settings }, image, { signal: controller.signal }),
    (e: Error & { code?: string }) => e.code === "EABORTED",
  );
  assert.equal(server.requests.filter((q) => q.action === "CancelExportTask").length, 1, "the task was cancelled");
  const [task] = [...account.tasks.values()];
  assert.equal(task!.status, "deleted");
  assert.deepEqual(await keys(), []);
});

test("an export that fails is an error with its status message, and nothing is left", async (t) => {
  const { account, s3, ec2, image, settings, keys, fake } = await exportFixture(t, 1);
  // The AMI's snapshot goes away after the export started: AWS ends such a task failed.
  const started = openExportedAmi({ ec2, s3, settings }, image);
  account.snapshots.delete(fake.blockDevices[0]!.snapshotId!);
  await assert.rejects(started, (e: Error & { code?: string }) => {
    assert.equal(e.code, "EWAIT", e.message);
    assert.match(
      e.message,
      /export task export-ami-\w+ .* ended deleted: ClientError: the image .* root snapshot is gone/,
    );
    return true;
  });
  assert.deepEqual(await keys(), []);
});

test("an AMI with a product code is refused before any export starts", async (t) => {
  const { account, s3, server, ec2, settings, fake } = await exportFixture(t, 1);
  account.images.get(fake.id)!.productCodes.push("aw0evgkw8e5c1q413zgy5pjce");
  const image = await describeImage(ec2, fake.id);
  await assert.rejects(openExportedAmi({ ec2, s3, settings }, image), (e: Error & { code?: string }) => {
    assert.equal(e.code, "EUNSUPPORTED");
    assert.match(e.message, /ExportImage refuses AWS Marketplace images/);
    return true;
  });
  assert.equal(server.requests.filter((q) => q.action === "ExportImage").length, 0);
});
