/**
 * AWS through the CLI, end to end, on the test servers written from the AWS API reference (no AWS runs here):
 * the EBS direct APIs (test/helpers/aws/ebs-direct-server.ts: ListSnapshotBlocks, GetSnapshotBlock,
 * StartSnapshot, PutSnapshotBlock, CompleteSnapshot — https://docs.aws.amazon.com/ebs/latest/APIReference/) and
 * EC2 (test/helpers/aws/ec2-aws-server.ts: DescribeImages, RegisterImage, DeregisterImage, DescribeSnapshots,
 * DeleteSnapshot, CreateImage, DescribeInstances, DescribeVolumes —
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/), one fake account behind both, every request's
 * SigV4 checked. The cloud is named `aws`, its keys and endpoints given as AWS users give them
 * (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_EBS).
 *
 * - AWS → file and → a local store: an EBS-backed AMI read through GetSnapshotBlock (only its listed blocks)
 *   into qcow2 and VMDK in one pass, equal to the disk (`qemu-img compare`);
 * - local → AWS: the disk written as a new snapshot (only its non-zero blocks), registered with the boot mode
 *   the disk's own partition table shows; the snapshot reads back as the disk;
 * - an instance imaged with CreateImage (--no-reboot reaches the call), and exported with the temporary AMI and
 *   its snapshot removed at the end;
 * - an upload the service refuses half way leaves nothing in the account, or everything with --keep;
 * - local → AWS with --clean: the AMI holds the cleaned guest, registered with the architecture and ENA
 *   support that cleaning's inspection of the guest found.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { addAmi, awsCloud, blocksOfFile, hybridDisk } from "../helpers/aws/aws-cli-cloud.js";
import { EBS_BLOCK_SIZE, GIB } from "../helpers/aws/fake-aws-account.js";
import { writeSnapshotRaw } from "../helpers/aws/snapshot-raw.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";
import { qemuCompare, runCli } from "../helpers/tools.js";
import { historyGuestDisk, historyGuestFile, isRoot, PLANTED_HISTORY_LINE } from "../helpers/guest-images.js";

test("AWS → files: an EBS-backed AMI read block by block into qcow2 and VMDK, only its listed blocks fetched", async (t) => {
  const { dir, account, ebsServer, env } = await awsCloud(t);
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 11);
  const ami = addAmi(account, disk, "debian-source");
  const listed = account.snapshots.get(ami.blockDevices[0]!.snapshotId!)!.blocks.size;
  for (const [format, name] of [
    ["qcow2", "out.qcow2"],
    ["vmdk", "out.vmdk"],
  ] as const) {
    const before = ebsServer.stats.calls.GetSnapshotBlock ?? 0;
    const out = join(dir, name);
    const r = await runCli(["export", "--cloud", "aws", "--image", "debian-source", "--format", format, out], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const compared = await qemuCompare(disk, out);
    assert.equal(compared.code, 0, compared.stdout + compared.stderr);
    assert.equal(
      (ebsServer.stats.calls.GetSnapshotBlock ?? 0) - before,
      listed,
      "one GetSnapshotBlock per listed block",
    );
  }
  assert.ok(listed < GIB / EBS_BLOCK_SIZE / 50, `a sparse disk lists few blocks (${listed})`);
});

test("local → AWS: a new snapshot of the non-zero blocks, registered uefi-preferred from the disk's own layout", async (t) => {
  const { dir, account, ebsServer, env, secret } = await awsCloud(t);
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 23);
  const store = join(dir, "store");
  const up = await runCli(["image", "upload", "--cloud", `local:${store}`, disk, "hybrid", "--json"], env);
  assert.equal(up.code, 0, up.stderr + up.stdout);
  const r = await runCli(
    ["migrate", "--from", `local:${store}`, "--image", "hybrid", "--to", "aws", "--name", "hybrid-ami", "--json"],
    env,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.ok(!(r.stdout + r.stderr).includes(secret), "the secret key never appears in the output");
  const done = doneOf(r.stdout, "migrate") as unknown as { image: { id: string } };
  const image = account.images.get(done.image.id);
  assert.ok(image, `the AMI ${done.image.id} exists`);
  assert.equal(image.name, "hybrid-ami");
  assert.equal(image.bootMode, "uefi-preferred", "BIOS and UEFI loaders on the disk: the instance type decides");
  assert.equal(image.enaSupport, true);
  assert.equal(image.architecture, "x86_64");
  const snapshotId = image.blockDevices[0]!.snapshotId!;
  const snapshot = account.snapshots.get(snapshotId)!;
  assert.equal(snapshot.status, "completed");
  const nonZero = [...(await blocksOfFile(disk))].length;
  assert.equal(ebsServer.stats.calls.PutSnapshotBlock, nonZero, "blocks sent = the disk's non-zero blocks");
  const back = join(dir, "back.raw");
  await writeSnapshotRaw(snapshot, back);
  const compared = await qemuCompare(disk, back);
  assert.equal(compared.code, 0, compared.stdout + compared.stderr);
  assert.equal(account.snapshots.size, 1, "no other snapshot was left behind");
});

test("an instance imaged with CreateImage (--no-reboot), then exported with its temporary AMI removed", async (t) => {
  const { dir, account, ec2Server, env } = await awsCloud(t);
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 37);
  const instanceId = account.newId("i");
  const blocks = await blocksOfFile(disk);
  account.instances.set(instanceId, {
    id: instanceId,
    state: "running",
    rootDeviceName: "/dev/xvda",
    rootVolume: { sizeGiB: 1, blocks },
    architecture: "x86_64",
    bootMode: "uefi",
  });
  const made = await runCli(
    ["image", "create", "--cloud", "aws", instanceId, "from-instance", "--no-reboot", "--json"],
    env,
  );
  assert.equal(made.code, 0, made.stderr + made.stdout);
  assert.deepEqual(
    ec2Server.createImageCalls.map((c) => [c.instanceId, c.noReboot]),
    [[instanceId, true]],
  );
  const imagesBefore = account.images.size;
  const snapshotsBefore = account.snapshots.size;
  const out = join(dir, "instance.qcow2");
  const r = await runCli(["export", "--cloud", "aws", "--instance", instanceId, "--format", "qcow2", out], env);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const compared = await qemuCompare(disk, out);
  assert.equal(compared.code, 0, compared.stdout + compared.stderr);
  assert.equal(ec2Server.createImageCalls.at(-1)!.noReboot, false, "without --no-reboot the instance is stopped");
  assert.equal(account.images.size, imagesBefore, "the temporary AMI was deregistered");
  assert.equal(account.snapshots.size, snapshotsBefore, "and its snapshot deleted");
});

test("an upload the service refuses half way leaves nothing in the account; with --keep, what it made", async (t) => {
  // Access refused after 5 blocks were stored: AccessDenied is final, never retried.
  const { dir, account, env, ebsServer } = await awsCloud(t, {
    failWith: { code: "AccessDeniedException", count: Number.POSITIVE_INFINITY, call: "PutSnapshotBlock", after: 5 },
  });
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 41);
  const store = join(dir, "store");
  assert.equal((await runCli(["image", "upload", "--cloud", `local:${store}`, disk, "d"], env)).code, 0);
  const migrate = ["migrate", "--from", `local:${store}`, "--image", "d", "--to", "aws", "--json"];
  const failed = await runCli(migrate, env);
  assert.notEqual(failed.code, 0, failed.stdout);
  assert.ok(ebsServer.stats.calls.PutSnapshotBlock! >= 5, "the refusal came after blocks were stored");
  assert.match(errorOf(failed.stdout).message, /AccessDenied/);
  assert.equal(account.images.size, 0, "no AMI registered");
  assert.equal(account.snapshots.size, 0, "the started snapshot was deleted");
  const kept = await runCli([...migrate, "--keep"], env);
  assert.notEqual(kept.code, 0, kept.stdout);
  assert.equal(account.snapshots.size, 1, "--keep leaves the started snapshot for a look");
  assert.equal([...account.snapshots.values()][0]!.status, "pending");
});

test("local → AWS --clean: cleaned on the way, registered with the architecture and ENA the guest has (root)", async (t) => {
  assert.ok(await isRoot(), "cleaning mounts the guest: run this suite as root (.ci/run does)");
  const { dir, account, env } = await awsCloud(t);
  // An i386 guest (its init's ELF header says so) whose only kernel has modules but no ENA driver: the AMI must
  // not claim ENA (it would boot with no network on every current instance type), whatever the metadata says.
  const disk = join(dir, "guest.raw");
  await historyGuestDisk(disk, dir);
  const store = join(dir, "store");
  const up = await runCli(
    ["image", "upload", "--cloud", `local:${store}`, disk, "i386-guest", "--property", "architecture=x86_64"],
    env,
  );
  assert.equal(up.code, 0, up.stderr + up.stdout);
  const r = await runCli(
    ["migrate", "--from", `local:${store}`, "--image", "i386-guest", "--to", "aws", "--clean", "--json"],
    env,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const done = doneOf(r.stdout, "migrate") as unknown as { image: { id: string } };
  const image = account.images.get(done.image.id)!;
  assert.equal(image.architecture, "i386", "the guest's init is i386; the metadata's x86_64 was wrong");
  assert.equal(image.enaSupport, false, "its kernel has no ENA driver");
  assert.match(r.stdout, /"phase":"clean","state":"end"/);
  const back = join(dir, "back.raw");
  await writeSnapshotRaw(account.snapshots.get(image.blockDevices[0]!.snapshotId!)!, back);
  assert.match(await historyGuestFile(back, "/etc/os-release"), /ID=debian/, "the AMI's root filesystem reads back");
  const history = await historyGuestFile(back, "/root/.bash_history");
  assert.ok(!history.includes(PLANTED_HISTORY_LINE), "the shell history was cleaned out of the AMI");
});
