/**
 * What the import path tells VM Import's requirements about a disk (the requirements themselves are tested in
 * vm-import-requirements.test.ts), the upload addresses a job may ask the store to delete, and a run cancelled
 * while the task runs — against the EC2 server written from the AWS API reference
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportImage.html, API_CancelImportTask.html) over
 * the real Swift s3api, not against AWS. The import itself is tested through the CLI in
 * test/workflows/aws-vm-import-export.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  IMPORT_PREFIX,
  parseUploadLocation,
  uploadLocation,
  vmImportDiskOf,
} from "../../../src/providers/aws/ami-import-write.js";
import { vmImportProblems } from "../../../src/providers/aws/vm-import-requirements.js";
import { importAmi } from "../../../src/providers/aws/ami-import-write.js";
import { awsSettings } from "../../../src/providers/aws/aws-settings.js";
import { listObjects } from "../../../src/providers/ec2/s3-listing.js";
import { awsWithSwift } from "../../helpers/aws/aws-with-swift.js";
import { multipartUploadsIn } from "../../helpers/s3-uploads.js";
import { requireSwift } from "../../helpers/swift-s3.js";
import { pattern } from "../../helpers/tools.js";

const GIB = 1024 ** 3;

test("a raw disk with both loaders is left to VM Import's choice of boot mode; one loader is asked for", () => {
  const both = vmImportDiskOf({ name: "d", diskFormat: "raw", sizeBytes: 8 * GIB, guest: { firmware: "both" } });
  assert.deepEqual(both, { diskFormat: "raw", virtualSizeBytes: 8 * GIB, fileSizeBytes: 8 * GIB });
  assert.deepEqual(vmImportProblems(both), []);
  const uefi = vmImportDiskOf({ name: "d", diskFormat: "raw", sizeBytes: GIB, guest: { firmware: "uefi" } });
  assert.equal(uefi.bootMode, "uefi");
  const said = vmImportDiskOf({
    name: "d",
    diskFormat: "raw",
    sizeBytes: GIB,
    properties: { hw_firmware_type: "bios" },
  });
  assert.equal(said.bootMode, "legacy-bios");
});

test("Glance-style properties name the architecture and distribution VM Import judges", () => {
  const old = vmImportDiskOf({
    name: "d",
    diskFormat: "raw",
    sizeBytes: GIB,
    properties: { architecture: "x86_64", os_distro: "debian", os_version: "9" },
  });
  assert.deepEqual(old.os, { type: "linux", distro: "debian", version: "9" });
  assert.match(vmImportProblems(old).join(" "), /does not list debian 9/);
  const arm = vmImportDiskOf({ name: "d", diskFormat: "raw", sizeBytes: GIB, properties: { architecture: "aarch64" } });
  assert.match(vmImportProblems(arm).join(" "), /ARM64/);
  const windows = vmImportDiskOf({
    name: "d",
    diskFormat: "raw",
    sizeBytes: GIB,
    properties: { os_distro: "windows" },
  });
  assert.equal(windows.os?.type, "windows");
});

test("only an upload this path makes is taken as an address to delete", () => {
  const key = `${IMPORT_PREFIX}disk-0123456789ab.raw`;
  assert.deepEqual(parseUploadLocation(uploadLocation("b", key)), { bucket: "b", key });
  assert.equal(parseUploadLocation("s3://b/other/disk.raw"), undefined);
  assert.equal(parseUploadLocation(`s3://b/${IMPORT_PREFIX}../x`), undefined);
  assert.equal(parseUploadLocation("ami-0123456789abcdef0"), undefined);
});

test("a run cancelled while the import task runs cancels it: no AMI, no snapshot, no object", async (t) => {
  await requireSwift();
  const { account, s3, bucket, server, ec2 } = await awsWithSwift(t, { pollsPerStep: 1000 });
  const settings = awsSettings({ CHROMOGENIC_AWS_BUCKET: bucket, CHROMOGENIC_AWS_TASK_POLL_SECONDS: "0.02" });
  const controller = new AbortController();
  async function* data() {
    yield pattern(6 * 2 ** 20, 4);
  }
  const run = importAmi(
    { ec2, s3, settings, label: "aws:test" },
    { name: "cancelled", diskFormat: "raw", sizeBytes: 6 * 2 ** 20 },
    data(),
    { signal: controller.signal },
    { rootVolumeSizeGiB: 1, enaSupport: true },
  );
  // Cancelled once the task is under way.
  const poll = setInterval(() => {
    if (account.tasks.size > 0) controller.abort();
  }, 20);
  t.after(() => clearInterval(poll));
  await assert.rejects(run, (e: Error & { code?: string }) => e.code === "EABORTED");
  assert.equal(server.requests.filter((q) => q.action === "CancelImportTask").length, 1);
  assert.equal([...account.tasks.values()][0]!.status, "deleted");
  assert.equal(account.images.size + account.snapshots.size, 0);
  const keys: string[] = [];
  for await (const o of listObjects(s3, bucket, "")) keys.push(o.key);
  assert.deepEqual(keys, [], "the uploaded object was removed");
  assert.deepEqual(await multipartUploadsIn(s3, bucket), []);
});

test("a run cancelled mid-upload aborts its multipart upload and starts no task", async (t) => {
  await requireSwift();
  const { account, s3, bucket, server, ec2 } = await awsWithSwift(t);
  const settings = awsSettings({ CHROMOGENIC_AWS_BUCKET: bucket });
  const controller = new AbortController();
  async function* data() {
    yield pattern(16 * 2 ** 20, 5);
    yield pattern(16 * 2 ** 20, 6);
    // Cancelled once parts are on their way.
    controller.abort();
    yield pattern(16 * 2 ** 20, 7);
  }
  await assert.rejects(
    importAmi(
      { ec2, s3, settings, label: "aws:test" },
      { name: "cut", diskFormat: "raw", sizeBytes: 48 * 2 ** 20 },
      data(),
      { signal: controller.signal },
      { rootVolumeSizeGiB: 1, enaSupport: true },
    ),
    (e: Error & { code?: string }) => e.code === "EABORTED",
  );
  assert.deepEqual(await multipartUploadsIn(s3, bucket), [], "the multipart upload was aborted");
  assert.equal(server.requests.filter((q) => q.action === "ImportImage").length, 0);
  assert.equal(account.tasks.size, 0);
});
