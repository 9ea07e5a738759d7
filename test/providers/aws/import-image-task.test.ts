/**
 * ImportImage and ImportSnapshot and their waits, against the EC2 test server written from the Amazon EC2 API
 * Reference (API_ImportImage.html, API_ImportSnapshot.html, API_DescribeImportImageTasks.html,
 * API_DescribeImportSnapshotTasks.html, API_CancelImportTask.html) and the VM Import/Export User Guide's task
 * statuses (check-import-task-status.html) — verified against that server and the real Swift s3api, not
 * against AWS. Disks are uploaded to Swift, imported, and the snapshot made compared with the source.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  startImportImage,
  startImportSnapshot,
  waitForImportImage,
  waitForImportSnapshot,
} from "../../../src/providers/aws/import-image-task.js";
import { putObject } from "../../../src/providers/ec2/s3-objects.js";
import { describeImage } from "../../../src/providers/ec2/ec2-images.js";
import { requireSwift } from "../../helpers/swift-s3.js";
import { awsWithSwift } from "../../helpers/aws/aws-with-swift.js";
import { writeSnapshotRaw } from "../../helpers/aws/snapshot-raw.js";
import { buildTar } from "../../helpers/ova-tools.js";
import { makeRaw, mixedRegions, qemuCompare, qemuImg, scratch } from "../../helpers/tools.js";

before(requireSwift);

const MiB = 2 ** 20;
const poll = { timeoutMs: 120_000, intervalMs: 10 };

/** A 64 MiB raw disk with the standard mix of content, and the same disk as a stream-optimized VMDK. */
async function sourceDisks(dir: string) {
  const raw = join(dir, "source.raw");
  await makeRaw(raw, 64 * MiB, mixedRegions(64 * MiB));
  const vmdk = join(dir, "source.vmdk");
  await qemuImg("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk);
  return { raw, vmdk };
}

for (const format of ["RAW", "VMDK"] as const) {
  test(`ImportImage of a ${format} object: an AMI whose snapshot holds the source's bytes`, async (t) => {
    const { account, s3, bucket, server, ec2 } = await awsWithSwift(t);
    const dir = await scratch(t);
    const disks = await sourceDisks(dir);
    const file = format === "RAW" ? disks.raw : disks.vmdk;
    await putObject(s3, bucket, `uploads/disk.${format.toLowerCase()}`, await readFile(file));
    const taskId = await startImportImage(ec2, {
      disks: [{ format, bucket, key: `uploads/disk.${format.toLowerCase()}` }],
      bootMode: "uefi",
      architecture: "x86_64",
      platform: "Linux",
      licenseType: "BYOL",
      roleName: "vmimport",
      description: "debian from chromogenic",
    });
    assert.match(taskId, /^import-ami-[0-9a-f]{17}$/);
    const p = server.requests.find((r) => r.action === "ImportImage")!.params;
    assert.equal(p.get("DiskContainer.1.Format"), format);
    assert.equal(p.get("DiskContainer.1.UserBucket.S3Bucket"), bucket);
    assert.equal(p.get("DiskContainer.1.UserBucket.S3Key"), `uploads/disk.${format.toLowerCase()}`);
    assert.equal(p.get("BootMode"), "uefi");
    assert.equal(p.get("Architecture"), "x86_64");
    assert.equal(p.get("Platform"), "Linux");
    assert.equal(p.get("LicenseType"), "BYOL");
    assert.equal(p.get("RoleName"), "vmimport");
    const seen: string[] = [];
    const result = await waitForImportImage(ec2, taskId, { ...poll, onProgress: (s) => seen.push(s) });
    assert.deepEqual(seen, [
      "active, pending",
      "active, converting",
      "active, updating",
      "active, booting",
      "active, preparing ami",
    ]);
    assert.equal(result.taskId, taskId);
    assert.equal(result.snapshotIds.length, 1);
    const image = await describeImage(ec2, result.imageId!);
    assert.equal(image.bootMode, "uefi");
    assert.equal(image.blockDeviceMappings[0]!.snapshotId, result.snapshotIds[0]);
    const imported = join(dir, "imported.raw");
    await writeSnapshotRaw(account.snapshots.get(result.snapshotIds[0]!)!, imported);
    // The volume is whole GiB: the source's 64 MiB, then zeros (qemu-img compare checks that too).
    const r = await qemuCompare(disks.raw, imported);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
}

test("ImportImage of an OVA object: its VMDK becomes the AMI's snapshot", async (t) => {
  const { account, s3, bucket, ec2 } = await awsWithSwift(t);
  const dir = await scratch(t);
  const disks = await sourceDisks(dir);
  const ova = buildTar([
    { name: "debian.ovf", data: Buffer.from('<?xml version="1.0"?><Envelope/>\n') },
    { name: "debian-disk1.vmdk", data: await readFile(disks.vmdk) },
  ]);
  await putObject(s3, bucket, "debian.ova", ova);
  const taskId = await startImportImage(ec2, { disks: [{ format: "OVA", bucket, key: "debian.ova" }] });
  const result = await waitForImportImage(ec2, taskId, poll);
  const imported = join(dir, "imported.raw");
  await writeSnapshotRaw(account.snapshots.get(result.snapshotIds[0]!)!, imported);
  assert.equal((await qemuCompare(disks.raw, imported)).code, 0);
});

test("ImportSnapshot of a VMDK object: a snapshot with the source's bytes", async (t) => {
  const { account, s3, bucket, server, ec2 } = await awsWithSwift(t);
  const dir = await scratch(t);
  const disks = await sourceDisks(dir);
  await putObject(s3, bucket, "disk.vmdk", await readFile(disks.vmdk));
  const taskId = await startImportSnapshot(ec2, { disk: { format: "VMDK", bucket, key: "disk.vmdk" } });
  assert.match(taskId, /^import-snap-[0-9a-f]{17}$/);
  const p = server.requests.find((r) => r.action === "ImportSnapshot")!.params;
  assert.equal(p.get("DiskContainer.Format"), "VMDK");
  assert.equal(p.get("DiskContainer.UserBucket.S3Key"), "disk.vmdk");
  const result = await waitForImportSnapshot(ec2, taskId, poll);
  assert.equal(result.imageId, undefined);
  const imported = join(dir, "imported.raw");
  await writeSnapshotRaw(account.snapshots.get(result.snapshotIds[0]!)!, imported);
  assert.equal((await qemuCompare(disks.raw, imported)).code, 0);
});

test("an import of an object that is not the format it claims fails with VM Import's message", async (t) => {
  const { s3, bucket, ec2 } = await awsWithSwift(t);
  await putObject(s3, bucket, "not-a.vmdk", Buffer.from("this is text, not a disk\n".repeat(1000)));
  const taskId = await startImportImage(ec2, { disks: [{ format: "VMDK", bucket, key: "not-a.vmdk" }] });
  await assert.rejects(waitForImportImage(ec2, taskId, poll), {
    code: "EWAIT",
    message: new RegExp(
      `import image task ${taskId} at EC2 .* ended deleted: ClientError: Disk validation failed \\[Unsupported VMDK File Format\\]`,
    ),
  });
  const missing = await startImportSnapshot(ec2, { disk: { format: "RAW", bucket, key: "nothing-here.raw" } });
  await assert.rejects(waitForImportSnapshot(ec2, missing, poll), {
    code: "EWAIT",
    message: /ended deleted: ClientError: Disk validation failed \[We do not have access to the given resource/,
  });
});

test("a cancelled import wait, or one past its bound, sends CancelImportTask; uefi-preferred is refused before any request", async (t) => {
  const { account, bucket, server, ec2 } = await awsWithSwift(t, { pollsPerStep: 1000 });
  const taskId = await startImportImage(ec2, { disks: [{ format: "RAW", bucket, key: "x.raw" }] });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 150);
  await assert.rejects(waitForImportImage(ec2, taskId, { ...poll, intervalMs: 20, signal: controller.signal }), {
    code: "EABORTED",
  });
  assert.equal(server.requests.filter((r) => r.action === "CancelImportTask")[0]?.params.get("ImportTaskId"), taskId);
  assert.equal(account.tasks.get(taskId)!.status, "deleted");
  const slow = await startImportSnapshot(ec2, { disk: { format: "RAW", bucket, key: "x.raw" } });
  await assert.rejects(waitForImportSnapshot(ec2, slow, { timeoutMs: 200, intervalMs: 50 }), {
    code: "EWAIT",
    message: new RegExp(
      `import snapshot task ${slow} at EC2 .* is still active, pending \\(3%\\) after \\d+ s \\(the limit\\)`,
    ),
  });
  assert.equal(account.tasks.get(slow)!.status, "deleted", "cancelled at the bound");
  const before = server.requests.length;
  await assert.rejects(
    startImportImage(ec2, {
      disks: [{ format: "RAW", bucket, key: "x.raw" }],
      bootMode: "uefi-preferred" as "uefi",
    }),
    { code: "EUSAGE", message: /uefi-preferred/ },
  );
  assert.equal(server.requests.length, before);
});
