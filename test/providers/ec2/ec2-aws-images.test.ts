/**
 * The EC2 image and snapshot calls against AWS's side of them, as the test server written from the Amazon EC2
 * API Reference plays it (test/helpers/aws/ec2-aws-server.ts — verified against that server, not against AWS):
 * API_RegisterImage.html (BootMode, EnaSupport, ImdsSupport, BlockDeviceMapping.N.Ebs.VolumeType),
 * API_DescribeImages.html (productCodes, bootMode, enaSupport, imdsSupport; MaxResults/NextToken),
 * API_CreateImage.html (NoReboot), API_DescribeSnapshots.html, API_DeleteSnapshot.html
 * (InvalidSnapshot.NotFound, InvalidSnapshot.InUse), and the throttling of the Query API (RequestLimitExceeded,
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html). Every request is SigV4-checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createImage, describeImage, describeImages, registerImage } from "../../../src/providers/ec2/ec2-images.js";
import { describeInstances } from "../../../src/providers/ec2/ec2-instances.js";
import { waitForImage } from "../../../src/providers/ec2/ec2-image-wait.js";
import { deleteSnapshot, describeSnapshot, waitForSnapshot } from "../../../src/providers/ec2/ec2-snapshots.js";
import { MAX_WAIT_MS, waitBoundMs } from "../../../src/providers/ec2/ec2-wait-bounds.js";
import { modifyLaunchPermissions, getLaunchPermissions } from "../../../src/providers/ec2/ec2-launch-permissions.js";
import { AwsServiceError } from "../../../src/providers/ec2/aws-errors.js";
import { FakeAwsAccount, blocksOf } from "../../helpers/aws/fake-aws-account.js";
import { startEc2AwsServer } from "../../helpers/aws/ec2-aws-server.js";
import { pattern } from "../../helpers/tools.js";

const disk = () => Buffer.concat([pattern(3 * 512 * 1024 + 100, 5), Buffer.alloc(1024 * 1024), pattern(4096, 6)]);

test("RegisterImage of a snapshot: boot mode, ENA, IMDSv2, architecture and a gp3 root arrive as set", async (t) => {
  const account = new FakeAwsAccount();
  const { server, ec2 } = await startEc2AwsServer(t, account);
  const snap = account.addSnapshotOf(disk(), { volumeSizeGiB: 2 });
  const id = await registerImage(ec2, {
    name: "debian-uefi",
    snapshotId: snap.id,
    rootDeviceName: "/dev/xvda",
    rootVolumeSizeGiB: 4,
    rootVolumeType: "gp3",
    architecture: "arm64",
    virtualizationType: "hvm",
    bootMode: "uefi",
    enaSupport: true,
    imdsV2Only: true,
  });
  const p = server.requests.find((r) => r.action === "RegisterImage")!.params;
  assert.equal(p.get("BootMode"), "uefi");
  assert.equal(p.get("EnaSupport"), "true");
  assert.equal(p.get("ImdsSupport"), "v2.0");
  assert.equal(p.get("BlockDeviceMapping.1.Ebs.VolumeType"), "gp3");
  assert.equal(p.get("BlockDeviceMapping.1.Ebs.VolumeSize"), "4");
  const image = await describeImage(ec2, id);
  assert.equal(image.bootMode, "uefi");
  assert.equal(image.enaSupport, true);
  assert.equal(image.imdsSupport, "v2.0");
  assert.equal(image.architecture, "arm64");
  assert.equal(image.rootDeviceType, "ebs");
  assert.deepEqual(image.blockDeviceMappings, [
    { deviceName: "/dev/xvda", snapshotId: snap.id, volumeSizeGiB: 4, deleteOnTermination: true, volumeType: "gp3" },
  ]);
  assert.equal(account.images.get(id)!.bootMode, "uefi");
});

test("RegisterImage refuses a pending or missing snapshot and a root smaller than it, with EC2's codes", async (t) => {
  const account = new FakeAwsAccount();
  const { ec2 } = await startEc2AwsServer(t, account);
  const snap = account.addSnapshotOf(disk(), { volumeSizeGiB: 3 });
  await assert.rejects(
    registerImage(ec2, { name: "a", snapshotId: "snap-00000000000000000", rootDeviceName: "/dev/xvda" }),
    {
      code: "ENOENT",
      message: /RegisterImage .*InvalidSnapshot\.NotFound/,
    },
  );
  await assert.rejects(
    registerImage(ec2, { name: "b", snapshotId: snap.id, rootDeviceName: "/dev/xvda", rootVolumeSizeGiB: 1 }),
    { message: /InvalidBlockDeviceMapping: Volume of size 1GB is smaller than snapshot/ },
  );
  snap.status = "pending";
  const e = (await registerImage(ec2, { name: "c", snapshotId: snap.id, rootDeviceName: "/dev/xvda" }).catch(
    (x: unknown) => x,
  )) as AwsServiceError;
  assert.equal(e.awsCode, "IncorrectState");
  assert.match(e.message, /\(HTTP 400, request [0-9a-f-]{36}\)/);
});

test("DescribeImages reads product codes; filters by owner, id and name; pages with MaxResults/NextToken", async (t) => {
  const account = new FakeAwsAccount();
  const { server, ec2 } = await startEc2AwsServer(t, account, { defaultPageSize: 2 });
  const snap = account.addSnapshotOf(disk());
  const sold = server.addImageOf(snap.id, { name: "sold-1", productCodes: ["cx1a2b3c4d5e6f7g8h9i0j"] });
  for (const n of [2, 3, 4]) server.addImageOf(snap.id, { name: `plain-${n}` });
  const all = await describeImages(ec2, { owners: ["self"] });
  assert.equal(all.length, 4);
  const pages = server.requests.filter((r) => r.action === "DescribeImages");
  assert.equal(pages.length, 2, "two pages of two");
  assert.ok(pages[1]!.params.get("NextToken"));
  assert.deepEqual((await describeImage(ec2, sold.id)).productCodes, [
    { id: "cx1a2b3c4d5e6f7g8h9i0j", type: "marketplace" },
  ]);
  assert.deepEqual((await describeImages(ec2, { filters: { name: ["plain-?"] } })).map((i) => i.name).sort(), [
    "plain-2",
    "plain-3",
    "plain-4",
  ]);
  assert.deepEqual(await describeImages(ec2, { owners: ["999999999999"] }), []);
  await assert.rejects(describeImage(ec2, "ami-00000000000000000"), { code: "ENOENT" });
});

test("CreateImage with NoReboot: a pending image and snapshot of the root volume that complete over polls", async (t) => {
  const account = new FakeAwsAccount();
  const { server, ec2 } = await startEc2AwsServer(t, account, { pollsPerStep: 2 });
  const root = disk();
  account.instances.set("i-0123456789abcdef0", {
    id: "i-0123456789abcdef0",
    state: "running",
    rootDeviceName: "/dev/xvda",
    rootVolume: { sizeGiB: 2, blocks: blocksOf(root) },
    architecture: "x86_64",
    bootMode: "uefi",
  });
  const id = await createImage(ec2, "i-0123456789abcdef0", "from-instance", { noReboot: true });
  assert.deepEqual(server.createImageCalls, [{ imageId: id, instanceId: "i-0123456789abcdef0", noReboot: true }]);
  const pending = await describeImage(ec2, id);
  assert.equal(pending.state, "pending");
  const snapshotId = pending.blockDeviceMappings[0]!.snapshotId!;
  const states: string[] = [];
  const image = await waitForImage(ec2, id, { intervalMs: 10, timeoutMs: 5000, onState: (s) => states.push(s) });
  assert.equal(image.state, "available");
  assert.equal(image.bootMode, "uefi");
  assert.deepEqual(states, ["pending", "available"]);
  assert.deepEqual(
    (await describeInstances(ec2, ["i-0123456789abcdef0"])).map((i) => [i.id, i.state, i.rootDeviceType]),
    [["i-0123456789abcdef0", "running", "ebs"]],
  );
  const snapshot = await describeSnapshot(ec2, snapshotId);
  assert.equal(snapshot.state, "completed");
  assert.equal(snapshot.volumeSizeGiB, 2);
  assert.deepEqual([...account.snapshots.get(snapshotId)!.blocks.keys()], [...blocksOf(root).keys()]);
});

test("DescribeSnapshots: one snapshot as a record; a missing one is ENOENT naming it", async (t) => {
  const account = new FakeAwsAccount();
  const { ec2 } = await startEc2AwsServer(t, account);
  const snap = account.addSnapshotOf(disk(), { volumeSizeGiB: 8, description: "root of debian" });
  assert.deepEqual(await describeSnapshot(ec2, snap.id), {
    id: snap.id,
    state: "completed",
    volumeSizeGiB: 8,
    progress: "100",
    description: "root of debian",
    encrypted: false,
    ownerId: account.accountId,
  });
  await assert.rejects(describeSnapshot(ec2, "snap-0000000000000000a"), {
    code: "ENOENT",
    message: /has no snapshot snap-0000000000000000a$/,
  });
});

test("DeleteSnapshot is idempotent, and refuses a snapshot an image still uses (EINUSE)", async (t) => {
  const account = new FakeAwsAccount();
  const { ec2 } = await startEc2AwsServer(t, account);
  const snap = account.addSnapshotOf(disk());
  const imageId = await registerImage(ec2, { name: "uses-it", snapshotId: snap.id, rootDeviceName: "/dev/xvda" });
  await assert.rejects(deleteSnapshot(ec2, snap.id), { code: "EINUSE", message: /InvalidSnapshot\.InUse/ });
  account.images.delete(imageId);
  await deleteSnapshot(ec2, snap.id);
  assert.equal(account.snapshots.has(snap.id), false);
  await deleteSnapshot(ec2, snap.id); // already gone: fine
});

test("waitForSnapshot: completes, ends with EC2's message on error, stops at its bound, and is cancellable", async (t) => {
  const account = new FakeAwsAccount();
  const { ec2 } = await startEc2AwsServer(t, account);
  const snap = account.addSnapshotOf(disk());
  assert.equal((await waitForSnapshot(ec2, snap.id, { timeoutMs: 1000, intervalMs: 10 })).state, "completed");
  snap.status = "pending";
  const started = Date.now();
  await assert.rejects(waitForSnapshot(ec2, snap.id, { timeoutMs: 200, intervalMs: 50 }), {
    code: "EWAIT",
    message: new RegExp(`snapshot ${snap.id} at EC2 .* is still pending .*the limit`),
  });
  assert.ok(Date.now() - started < 2000);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(
    waitForSnapshot(ec2, snap.id, { timeoutMs: 60_000, intervalMs: 20, signal: controller.signal }),
    {
      code: "EABORTED",
    },
  );
  snap.status = "error";
  await assert.rejects(waitForSnapshot(ec2, snap.id, { timeoutMs: 1000, intervalMs: 10 }), {
    code: "EWAIT",
    message: /ended in error/,
  });
});

test("ModifyImageAttribute launch permissions, as AWS takes them", async (t) => {
  const account = new FakeAwsAccount();
  const { ec2 } = await startEc2AwsServer(t, account);
  const snap = account.addSnapshotOf(disk());
  const id = await registerImage(ec2, { name: "shared", snapshotId: snap.id, rootDeviceName: "/dev/xvda" });
  await modifyLaunchPermissions(ec2, id, { add: { userIds: ["210987654321"], all: true } });
  assert.deepEqual(await getLaunchPermissions(ec2, id), { userIds: ["210987654321"], all: true });
  await modifyLaunchPermissions(ec2, id, { remove: { all: true } });
  assert.deepEqual(await getLaunchPermissions(ec2, id), { userIds: ["210987654321"], all: false });
  await assert.rejects(modifyLaunchPermissions(ec2, id, { add: { userIds: ["not-an-account"] } }), {
    message: /InvalidAMIAttributeItemValue/,
  });
});

test("a throttling storm: the SDK's retries ride out a short one; a long one is RequestLimitExceeded", async (t) => {
  const account = new FakeAwsAccount();
  const { server, ec2 } = await startEc2AwsServer(t, account);
  const snap = account.addSnapshotOf(disk());
  server.throttleNext(2);
  assert.equal((await describeSnapshot(ec2, snap.id)).state, "completed");
  server.throttleNext(50);
  const e = (await describeSnapshot(ec2, snap.id).catch((x: unknown) => x)) as AwsServiceError;
  assert.equal(e.awsCode, "RequestLimitExceeded");
  assert.equal(e.status, 503);
});

test("a request signed with a key the account does not know is refused, in EC2's error shape", async (t) => {
  const account = new FakeAwsAccount();
  const { server, ec2 } = await startEc2AwsServer(t, account);
  account.credentials.clear();
  const e = (await describeImages(ec2).catch((x: unknown) => x)) as AwsServiceError;
  assert.equal(e.awsCode, "UnrecognizedClientException");
  assert.match(e.message, /request [0-9a-f-]{36}/);
  assert.ok(server.requests.every((r) => r.accessKeyId === undefined));
});

test("wait bounds grow with the size, from a floor, and are capped", () => {
  assert.equal(waitBoundMs("snapshot", 8), (15 + 8) * 60_000);
  assert.equal(waitBoundMs("export", 8), (30 + 24) * 60_000);
  assert.equal(waitBoundMs("image", undefined), 16 * 60_000);
  assert.ok(waitBoundMs("import", 100) > waitBoundMs("import", 10));
  assert.equal(waitBoundMs("import", 64 * 1024), MAX_WAIT_MS);
});
