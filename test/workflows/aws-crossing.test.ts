/**
 * Migrations that cross from AWS to another cloud and back, through the CLI as users run them. AWS is the test
 * servers written from the AWS API reference (test/helpers/aws/aws-cli-cloud.ts: the EBS direct APIs —
 * ListSnapshotBlocks, GetSnapshotBlock, StartSnapshot, PutSnapshotBlock, CompleteSnapshot,
 * https://docs.aws.amazon.com/ebs/latest/APIReference/ — and EC2's DescribeImages, RegisterImage,
 * DeregisterImage, DescribeSnapshots, DeleteSnapshot, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/),
 * not AWS; the other side is real: the OpenStack test stack's Glance (user-a, RegionOne), and its ec2-api with
 * Swift as the Eucalyptus-style cloud `env-euca`.
 *
 * - AWS → OpenStack: the AMI's root snapshot read through GetSnapshotBlock (its listed blocks only), converted to
 *   Glance's preferred format and uploaded; the Glance image equals the disk, says the AMI's firmware and
 *   architecture in Glance's words, and carries no property that only meant something in EC2;
 * - OpenStack → AWS: a qcow2 image in Glance written as a new snapshot (non-zero blocks only), registered
 *   uefi-preferred from the disk's own layout (BIOS boot partition and ESP); the snapshot reads back as the disk;
 * - AWS → Eucalyptus: the AMI bundled into Swift and registered through ec2-api, which stores it in Glance;
 *   the bytes read back from both equal the disk.
 *
 * Each test fails, never skips, when the service it needs is not running (requireStack / requireEc2Api say how
 * to start it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { convertFile } from "../../src/formats/engine/convert.js";
import { OpenStackProvider } from "../../src/providers/openstack/openstack-provider.js";
import { addAmi, awsCloud, blocksOfFile, hybridDisk, withKeysInProfile } from "../helpers/aws/aws-cli-cloud.js";
import { writeSnapshotRaw } from "../helpers/aws/snapshot-raw.js";
import { requireEc2Api } from "../helpers/ec2-api-stack.js";
import { makeBundleKeys } from "../helpers/euca2ools.js";
import { doneOf } from "../helpers/event-lines.js";
import { requireStack, stackCloud } from "../helpers/openstack-stack.js";
import { qemuCompare, qemuInfo, runCli, type CliResult } from "../helpers/tools.js";
import {
  deleteEucaImage,
  ec2Image,
  ec2ProjectGlance,
  eucaEnv,
  glanceBytes,
  glanceImageOf,
} from "./helpers/eucalyptus-cloud.js";
import { writeCloudsYaml } from "./helpers/workflow-stack.js";
import { downloadTo } from "./helpers/workflow-steps.js";

const tag = randomUUID().slice(0, 8);

/** EC2's words for where an AMI's root sits in EC2; a Glance image or a bundle given them would mislead Nova. */
const EC2_ONLY_PROPERTIES = ["root_device_name", "root_device_type", "image_location", "image_type"];

interface MigrateDone {
  readonly image: { id: string };
  readonly plan: { targetFormat?: string; mode: string };
}

test("AWS → OpenStack: an AMI read through GetSnapshotBlock into Glance's format, firmware and architecture kept", async (t) => {
  await requireStack();
  const { dir, account, ebsServer, env } = await awsCloud(t);
  const clouds = await writeCloudsYaml(dir, { stack: { user: "user-a", region: "RegionOne" } });
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 61);
  const ami = addAmi(account, disk, `chromo-aws-src-${tag}`, {
    architecture: "arm64",
    bootMode: "uefi",
    description: "a Graviton guest",
  });
  const listed = account.snapshots.get(ami.blockDevices[0]!.snapshotId!)!.blocks.size;
  const name = `chromo-from-aws-${tag}`;
  const r = await runCli(["migrate", "--from", "aws", "--image", ami.id, "--to", "stack", "--name", name, "--json"], {
    ...env,
    OS_CLIENT_CONFIG_FILE: clouds,
  });
  assertRan(r);
  const done = doneOf(r.stdout, "migrate") as unknown as MigrateDone;
  const glance = new OpenStackProvider(stackCloud("user-a"));
  t.after(() => glance.deleteImage(done.image.id).catch(() => undefined));
  assert.equal(ebsServer.stats.calls.GetSnapshotBlock, listed, "one GetSnapshotBlock per listed block, no more");

  const image = await glance.getImage(done.image.id);
  assert.ok(image, `Glance has no image ${done.image.id}`);
  assert.equal(image.name, name);
  assert.equal(image.diskFormat, "qcow2", "converted to the stack's preferred format");
  const copy = await downloadTo(glance, image.id, join(dir, "glance-copy.qcow2"));
  assert.equal((await qemuInfo(copy)).format, "qcow2");
  const compared = await qemuCompare(disk, copy);
  assert.equal(compared.code, 0, `the Glance image differs from the AMI's disk: ${compared.stdout}`);

  const p = image.properties;
  assert.equal(p.hw_firmware_type, "uefi", "the AMI's boot mode, as Nova reads it");
  assert.equal(p.architecture, "aarch64", "EC2's arm64 in Glance's (libosinfo's) word");
  assert.equal(p.description, "a Graviton guest");
  for (const key of EC2_ONLY_PROPERTIES) assert.equal(p[key], undefined, `${key}=${p[key]} carried into Glance`);
});

test("OpenStack → AWS: a qcow2 image in Glance written as a snapshot of its non-zero blocks, uefi-preferred", async (t) => {
  await requireStack();
  const { dir, account, ebsServer, env, secret } = await awsCloud(t);
  const clouds = await writeCloudsYaml(dir, { stack: { user: "user-a", region: "RegionOne" } });
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 67);
  const qcow2 = join(dir, "disk.qcow2");
  await convertFile({ input: disk, output: qcow2, outputFormat: "qcow2" });
  const glance = new OpenStackProvider(stackCloud("user-a"));
  const source = await glance.uploadImage(
    {
      name: `chromo-to-aws-${tag}`,
      diskFormat: "qcow2",
      sizeBytes: (await stat(qcow2)).size,
      properties: { architecture: "x86_64", os_distro: "debian" },
    },
    createReadStream(qcow2, { highWaterMark: 2 ** 20 }),
  );
  t.after(() => glance.deleteImage(source.id).catch(() => undefined));

  const r = await runCli(
    ["migrate", "--from", "stack", "--image", source.id, "--to", "aws", "--name", "from-glance", "--json"],
    { ...env, OS_CLIENT_CONFIG_FILE: clouds },
  );
  assertRan(r);
  assert.ok(!(r.stdout + r.stderr).includes(secret), "the secret key never appears in the output");
  const done = doneOf(r.stdout, "migrate") as unknown as MigrateDone;
  const ami = account.images.get(done.image.id);
  assert.ok(ami, `the account has no AMI ${done.image.id}`);
  assert.equal(ami.name, "from-glance");
  assert.equal(ami.bootMode, "uefi-preferred", "BIOS and UEFI loaders on the disk: the instance type decides");
  assert.equal(ami.architecture, "x86_64");
  assert.equal(ami.rootDeviceType, "ebs");
  const snapshot = account.snapshots.get(ami.blockDevices[0]!.snapshotId!)!;
  assert.equal(snapshot.status, "completed");
  assert.equal(snapshot.volumeSizeGiB, 1);
  const nonZero = (await blocksOfFile(disk)).size;
  assert.equal(ebsServer.stats.calls.PutSnapshotBlock, nonZero, "blocks sent = the disk's non-zero blocks");
  const back = join(dir, "snapshot.raw");
  await writeSnapshotRaw(snapshot, back);
  const compared = await qemuCompare(disk, back);
  assert.equal(compared.code, 0, `the AMI's snapshot differs from the Glance image's disk: ${compared.stdout}`);
});

test("AWS → Eucalyptus: an AMI bundled into Swift, registered through ec2-api, stored in Glance as the disk", async (t) => {
  const stack = await requireEc2Api();
  const { dir, account, ebsServer, env: awsEnv } = await awsCloud(t);
  const keys = await makeBundleKeys(dir);
  const clouds = await writeCloudsYaml(dir, {});
  // The eucarc's variables name env-euca's keys, and AWS_ACCESS_KEY_ID would take their place there (euca2ools'
  // order): the AWS keys come from a profile of ~/.aws/credentials instead, as a user of both clouds keeps them.
  const env = {
    ...eucaEnv(stack, keys, { clouds, state: join(dir, "state") }),
    ...Object.fromEntries(
      Object.entries(await withKeysInProfile(awsEnv, "crossing")).filter(([k]) => k.startsWith("AWS_") || k === "HOME"),
    ),
  };
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 71);
  const ami = addAmi(account, disk, `chromo-aws-euca-${tag}`, { bootMode: "legacy-bios" });
  const listed = account.snapshots.get(ami.blockDevices[0]!.snapshotId!)!.blocks.size;

  const r = await runCli(["migrate", "--from", "aws:crossing", "--image", ami.id, "--to", "env-euca", "--json"], env);
  assertRan(r);
  const done = doneOf(r.stdout, "migrate") as unknown as MigrateDone;
  t.after(() => deleteEucaImage(env, done.image.id));
  assert.equal(ebsServer.stats.calls.GetSnapshotBlock, listed, "one GetSnapshotBlock per listed block, no more");

  const registered = await ec2Image(stack, done.image.id);
  assert.ok(registered, `ec2-api does not know ${done.image.id}`);
  assert.equal(registered.Name, ami.name);
  assert.equal(registered.Architecture, "x86_64");
  assert.ok(registered.ImageLocation, "an image registered from a bundle names its manifest");

  // What the CLI reads back (the bundle in Swift) and what ec2-api stored (Glance) are both the disk.
  const exported = join(dir, "exported.raw");
  const e = await runCli(["export", "--cloud", "env-euca", "--image", done.image.id, "--format", "raw", exported], env);
  assertRan(e);
  assert.equal((await qemuCompare(disk, exported)).code, 0, "the bundle read back differs from the AMI's disk");
  const glance = ec2ProjectGlance(stack);
  const stored = await glanceImageOf(glance, registered.ImageLocation);
  assert.ok(stored, `ec2-api put no image from ${registered.ImageLocation} in Glance`);
  const inGlance = await glanceBytes(glance, stored.id, dir, "in-glance.img");
  const compared = await qemuCompare(disk, inGlance);
  assert.equal(compared.code, 0, `the image ec2-api stored in Glance differs from the disk: ${compared.stdout}`);
});

/** The CLI run ended with 0; otherwise how it ended (an exit code, or the signal that stopped it) and its stderr. */
function assertRan(r: CliResult): void {
  const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  assert.equal(r.code, 0, `chromogenic ended with ${how} after ${r.seconds} s: ${r.stderr.slice(-4000)}`);
}
