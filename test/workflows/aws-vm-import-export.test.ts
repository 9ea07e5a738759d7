/**
 * The alternatives to the EBS direct APIs, through the CLI: `--aws-read-via export` (ExportImage writes the AMI
 * to S3 as RAW, read there with ranged GETs) and `--aws-write-via import` (the disk uploaded to S3, then
 * ImportImage). EC2 is the server written from the AWS API reference (test/helpers/aws/ec2-aws-server.ts:
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ExportImage.html,
 * API_DescribeExportImageTasks.html, API_ImportImage.html, API_DescribeImportImageTasks.html,
 * API_RegisterImage.html, API_DeregisterImage.html; the exported object's key from the VM Import/Export User
 * Guide, start-image-export.html; a failed import's "ClientError: …" status from check-import-task-status.html);
 * S3 is the real Swift s3api (test/helpers/swift-s3.ts), written and read by both this CLI and that server.
 * No AWS runs here: these paths are verified against that server, not against AWS.
 *
 * The AWS identity is the test Swift's user, registered in the fake account too, so that one key signs EC2
 * and S3 requests alike, as one AWS key does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildGpt } from "../../src/guest/partitions/gpt-writer.js";
import { randomGuid } from "../../src/guest/partitions/guid.js";
import { listObjects } from "../../src/providers/ec2/s3-listing.js";
import { headObject } from "../../src/providers/ec2/s3-objects.js";
import type { S3Connection } from "../../src/providers/ec2/s3-connection.js";
import { awsCliEnv } from "../helpers/aws/aws-home.js";
import { startEc2AwsServer } from "../helpers/aws/ec2-aws-server.js";
import { FakeAwsAccount, GIB } from "../helpers/aws/fake-aws-account.js";
import { writeSnapshotRaw } from "../helpers/aws/snapshot-raw.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";
import { multipartUploadsIn } from "../helpers/s3-uploads.js";
import { requireSwift, SWIFT_S3_URL, SWIFT_USERS, swiftConnection, testBucket } from "../helpers/swift-s3.js";
import { makeRaw, pattern, qemuCompare, runCli, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;
const ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

async function awsOverSwift(t: { after(fn: () => Promise<void> | void): void }) {
  await requireSwift();
  const dir = await scratch(t, "chromo-aws-vmie-");
  const s3 = swiftConnection();
  t.after(() => s3.destroy());
  // Not created here: the CLI creates it when it is missing.
  const bucket = testBucket(t, s3);
  const account = new FakeAwsAccount();
  account.addCredential({ as: SWIFT_USERS.tester });
  const { server } = await startEc2AwsServer(t, account, { s3 });
  const env: NodeJS.ProcessEnv = {
    ...awsCliEnv(dir, SWIFT_USERS.tester, account.region),
    AWS_ENDPOINT_URL_EC2: server.url,
    AWS_ENDPOINT_URL_S3: SWIFT_S3_URL,
    // Nothing listens on port 9: a path that used the EBS direct APIs would fail.
    AWS_ENDPOINT_URL_EBS: "http://127.0.0.1:9",
    CHROMOGENIC_AWS_TASK_POLL_SECONDS: "0.05",
  };

  // GPT with an EFI system partition and no BIOS boot code: a disk that starts under UEFI only.
  const disk = join(dir, "disk.raw");
  const gpt = buildGpt(
    (96 * MiB) / 512,
    [{ number: 1, firstLba: 2048, lastLba: 67583, type: ESP, partUuid: randomGuid() }],
    randomGuid(),
  );
  await makeRaw(disk, 96 * MiB, [
    { offset: 0, data: gpt.head },
    { offset: gpt.tailOffset, data: gpt.tail },
    { offset: 2 * MiB, data: pattern(512 * 1024, 3) },
    { offset: 40 * MiB + 777, data: pattern(3 * MiB, 4) },
  ]);
  return { dir, s3, bucket, account, server, env, disk };
}

async function keysIn(s3: S3Connection, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  try {
    for await (const o of listObjects(s3, bucket, "")) keys.push(o.key);
  } catch (e) {
    if (!/NoSuchBucket/.test(String(e))) throw e;
  }
  return keys;
}

test("AWS → qcow2 through ExportImage: the S3 object read in place, removed afterwards, kept with --keep", async (t) => {
  const { dir, s3, bucket, account, server, env, disk } = await awsOverSwift(t);
  account.addImageOfFile(disk, "exported-source", "legacy-bios");
  const out = join(dir, "out.qcow2");
  const args = ["export", "--cloud", "aws", "--image", "exported-source", "--aws-read-via", "export"];
  const r = await runCli([...args, "--aws-bucket", bucket, "--format", "qcow2", out], env);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const compared = await qemuCompare(disk, out);
  assert.equal(compared.code, 0, compared.stdout + compared.stderr);
  assert.equal(server.requests.filter((q) => q.action === "ExportImage").length, 1);
  assert.equal(server.requests.find((q) => q.action === "ExportImage")!.params.get("DiskImageFormat"), "RAW");
  assert.deepEqual(await keysIn(s3, bucket), [], "the exported object was removed");

  const kept = join(dir, "kept.qcow2");
  const again = await runCli([...args, "--aws-bucket", bucket, "--format", "qcow2", kept, "--keep"], env);
  assert.equal(again.code, 0, again.stderr + again.stdout);
  const keys = await keysIn(s3, bucket);
  assert.equal(keys.length, 1, `--keep leaves the exported object (${keys.join(", ")})`);
  assert.match(keys[0]!, /^chromogenic-exports\/export-ami-[0-9a-f]+\.raw$/);
  // Its bytes were compared in the first run (read in place); fetching 1 GiB again would only add a minute.
  assert.equal((await headObject(s3, bucket, keys[0]!))?.size, GIB, "the kept object is the AMI's 1 GiB volume");
});

test("AWS through ExportImage without a bucket: a usage error naming --aws-bucket, nothing started", async (t) => {
  const { dir, account, server, env, disk } = await awsOverSwift(t);
  account.addImageOfFile(disk, "no-bucket", "legacy-bios");
  const r = await runCli(
    ["export", "--cloud", "aws", "--image", "no-bucket", "--aws-read-via", "export", "--format", "raw"].concat([
      join(dir, "o.raw"),
      "--json",
    ]),
    env,
  );
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.match(errorOf(r.stdout).message, /--aws-bucket/);
  assert.equal(server.requests.filter((q) => q.action === "ExportImage").length, 0);
});

test("local → AWS through ImportImage: an AMI with the name asked for, its snapshot the disk, the object removed", async (t) => {
  const { dir, s3, bucket, account, server, env, disk } = await awsOverSwift(t);
  const store = join(dir, "store");
  const up = await runCli(["image", "upload", "--cloud", `local:${store}`, disk, "imported"], env);
  assert.equal(up.code, 0, up.stderr + up.stdout);
  const r = await runCli(
    [
      "migrate",
      "--from",
      `local:${store}`,
      "--image",
      "imported",
      "--to",
      "aws",
      "--name",
      "imported-ami",
      "--aws-write-via",
      "import",
      "--aws-bucket",
      bucket,
      "--json",
    ],
    env,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const done = doneOf(r.stdout, "migrate") as unknown as { image: { id: string; name: string } };
  const image = account.images.get(done.image.id);
  assert.ok(image, `the AMI ${done.image.id} exists`);
  assert.equal(image.name, "imported-ami", "registered under the name asked for");
  assert.equal(account.images.size, 1, "the import task's own AMI was deregistered");
  const tasks = [...account.tasks.values()].filter((task) => task.kind === "import-image");
  assert.equal(tasks.length, 1);
  assert.equal(tasks[0]!.status, "completed");
  assert.equal(tasks[0]!.details.format, "RAW");
  const importCall = server.requests.find((q) => q.action === "ImportImage")!;
  assert.equal(importCall.params.get("RoleName"), "vmimport");
  assert.equal(importCall.params.get("BootMode"), "uefi", "the disk's own layout: an ESP and no BIOS boot code");
  assert.equal(image.bootMode, "uefi");
  assert.equal(image.enaSupport, true);
  assert.equal(account.snapshots.size, 1);
  const snapshot = account.snapshots.get(image.blockDevices[0]!.snapshotId!)!;
  const back = join(dir, "back.raw");
  await writeSnapshotRaw(snapshot, back);
  const compared = await qemuCompare(disk, back);
  assert.equal(compared.code, 0, compared.stdout + compared.stderr);
  assert.deepEqual(await keysIn(s3, bucket), [], "the uploaded object was removed");
  assert.deepEqual(await multipartUploadsIn(s3, bucket), []);
});

test("a disk VM Import refuses (an ARM64 guest) is refused before any byte is uploaded or any task started", async (t) => {
  const { dir, s3, bucket, account, server, env, disk } = await awsOverSwift(t);
  const store = join(dir, "store");
  const up = await runCli(
    ["image", "upload", "--cloud", `local:${store}`, disk, "arm", "--property", "architecture=aarch64"],
    env,
  );
  assert.equal(up.code, 0, up.stderr + up.stdout);
  const r = await runCli(
    ["migrate", "--from", `local:${store}`, "--image", "arm", "--to", "aws", "--aws-write-via", "import"].concat([
      "--aws-bucket",
      bucket,
      "--json",
    ]),
    env,
  );
  assert.notEqual(r.code, 0, r.stdout);
  const error = errorOf(r.stdout);
  assert.equal(error.code, "EUNSUPPORTED", error.message);
  assert.match(error.message, /VM Import does not import ARM64/);
  assert.match(error.message, /prerequisites\.html/);
  assert.deepEqual(await keysIn(s3, bucket), [], "nothing in the bucket");
  assert.equal(server.requests.filter((q) => q.action === "ImportImage").length, 0, "no task started");
  assert.equal(account.tasks.size, 0);
  assert.equal(account.images.size + account.snapshots.size, 0);
});

test("an import task that fails: its status message in the error, nothing left; with --keep the object stays", async (t) => {
  const { dir, s3, bucket, account, server, env, disk } = await awsOverSwift(t);
  const store = join(dir, "store");
  assert.equal((await runCli(["image", "upload", "--cloud", `local:${store}`, disk, "d"], env)).code, 0);
  const migrate = [
    "migrate",
    "--from",
    `local:${store}`,
    "--image",
    "d",
    "--to",
    "aws",
    "--aws-write-via",
    "import",
  ].concat(["--aws-bucket", bucket, "--json"]);
  server.failNextImport("Unknown OS / Missing OS files.");
  const r = await runCli(migrate, env);
  assert.notEqual(r.code, 0, r.stdout);
  const error = errorOf(r.stdout);
  assert.equal(error.code, "EIMPORT", error.message);
  assert.match(error.message, /VM Import did not import/);
  assert.match(error.message, /ClientError: Unknown OS \/ Missing OS files\./);
  assert.equal(account.tasks.size, 1, "the task ran");
  assert.equal(account.images.size + account.snapshots.size, 0, "no AMI, no snapshot");
  assert.deepEqual(await keysIn(s3, bucket), [], "the uploaded object was removed");

  server.failNextImport("Unknown OS / Missing OS files.");
  const kept = await runCli([...migrate, "--keep"], env);
  assert.notEqual(kept.code, 0, kept.stdout);
  const keys = await keysIn(s3, bucket);
  assert.equal(keys.length, 1, "--keep leaves the uploaded object for a look");
  assert.match(keys[0]!, /^chromogenic-imports\/d-[0-9a-f]{12}\.raw$/);
});
