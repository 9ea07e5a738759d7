/**
 * The EC2 test server: OpenStack's ec2-api 15.0.0 on the test stack's Keystone, Glance, Nova and Cinder, with
 * Swift's s3api behind s3token as its S3 (`aio.sh start ec2`; test/infra/openstack/README.md). What the EC2
 * suites rely on is checked here against the servers themselves: the calls answer, an instance-store bundle
 * made by the real euca2ools and put in Swift becomes a Glance image with the same bytes, launch permissions
 * map to Glance's visibility, and CreateImage images a volume-backed server through Nova and Cinder.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CreateImageCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  ModifyImageAttributeCommand,
  RegisterImageCommand,
  type EC2Client,
  type Image,
} from "@aws-sdk/client-ec2";
import { DeleteBucketCommand } from "@aws-sdk/client-s3";
import { KeystoneSession } from "../../../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../../../src/providers/openstack/glance-client.js";
import { NovaClient } from "../../../src/providers/openstack/nova-client.js";
import { downloadImage } from "../../../src/providers/openstack/image-download.js";
import { ensureBucket } from "../../../src/providers/ec2/s3-bucket.js";
import { deleteObject, putObject } from "../../../src/providers/ec2/s3-objects.js";
import type { S3Connection } from "../../../src/providers/ec2/s3-connection.js";
import { ec2Client, ec2UserCloud, requireEc2Api, s3Connection, type Ec2ApiStack } from "../../helpers/ec2-api-stack.js";
import { euca, makeBundleKeys } from "../../helpers/euca2ools.js";
import { chunksOf } from "../../helpers/openstack-stack.js";
import { pattern, scratch } from "../../helpers/tools.js";

let stack: Ec2ApiStack;
let ec2: EC2Client;
let glance: GlanceClient;

before(async () => {
  stack = await requireEc2Api();
  ec2 = ec2Client(stack);
  glance = new GlanceClient(new KeystoneSession(ec2UserCloud(stack)));
});

const unique = (what: string) => `chromo-ec2api-${what}-${randomUUID().slice(0, 8)}`;

async function describeImage(imageId: string): Promise<Image> {
  const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  assert.equal(out.Images?.length, 1, `DescribeImages ${imageId}`);
  return out.Images![0]!;
}

/** Polls DescribeImages until the image leaves "pending"; its last description. */
async function settled(imageId: string, timeoutMs = 120_000): Promise<Image> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const image = await describeImage(imageId);
    if (image.State !== "pending" || Date.now() > deadline) return image;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The Glance image behind an EC2 image: ec2-api keeps its name. */
async function glanceImageNamed(name: string) {
  const image = await glance.findImage(name);
  assert.ok(image, `Glance has no image named ${name}`);
  return image;
}

test("DescribeImages lists the Glance images the EC2 user sees, public and its own", async () => {
  const name = unique("private");
  const data = pattern(1024 * 1024, 7);
  const own = await glance.uploadImage({ name, diskFormat: "raw", containerFormat: "bare" }, chunksOf(data), {
    size: data.length,
  });
  try {
    const before = new Set<string>();
    for await (const image of glance.listImages()) before.add(image.name ?? "");
    const described = (await ec2.send(new DescribeImagesCommand({}))).Images ?? [];
    const after = new Set<string>();
    for await (const image of glance.listImages()) after.add(image.name ?? "");
    const names = new Set(described.map((i) => i.Name));
    // Other suites add and remove images meanwhile: every image Glance listed both before and after must be there.
    for (const n of before) if (after.has(n)) assert.ok(names.has(n), `DescribeImages lacks Glance's image "${n}"`);

    const tinyos = described.find((i) => i.Name === "tinyos");
    assert.ok(tinyos, "the stack's public image tinyos is listed");
    assert.equal(tinyos.Public, true);
    assert.equal(tinyos.State, "available");
    assert.equal(tinyos.ImageType, "machine");
    assert.match(tinyos.ImageId ?? "", /^ami-[0-9a-f]{8}$/);

    const mine = described.find((i) => i.Name === name);
    assert.ok(mine, "the user's private Glance image is listed");
    assert.equal(mine.Public, false);
    assert.equal(mine.OwnerId, stack.projectId, "the owner is the user's project");
    assert.equal(mine.State, "available");
  } finally {
    await glance.deleteImage(own.id, { ignoreMissing: true });
  }
});

/** Puts every file of a bundle folder in `bucket`; the keys, to delete afterwards. */
async function uploadBundle(s3: S3Connection, bucket: string, dir: string): Promise<string[]> {
  const keys = (await readdir(dir)).sort();
  for (const key of keys) await putObject(s3, bucket, key, await readFile(join(dir, key)));
  return keys;
}

test("a euca2ools bundle in Swift: RegisterImage, launch permission, DeregisterImage", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  // Three parts of 1 MiB (euca-bundle-image's hidden --part-size): the parts are joined in manifest order.
  const source = join(dir, "disk.img");
  const data = pattern(3 * 1024 * 1024 - 4096, 11);
  await writeFile(source, data);
  const bundleDir = join(dir, "bundle");
  await euca("euca-bundle-image", [
    "-i", source, "-r", "x86_64", "-k", keys.userKey, "-c", keys.userCert, "--ec2cert", stack.cloudCert,
    "-u", "123456789012", "-d", bundleDir, "--part-size", String(1024 * 1024),
  ]); // prettier-ignore
  assert.deepEqual((await readdir(bundleDir)).sort(), [
    "disk.img.manifest.xml",
    "disk.img.part.00",
    "disk.img.part.01",
    "disk.img.part.02",
  ]);

  const s3 = s3Connection(stack);
  const bucket = unique("bundle");
  assert.equal(await ensureBucket(s3, bucket), true, "a new bucket");
  const objects = await uploadBundle(s3, bucket, bundleDir);
  t.after(async () => {
    for (const key of objects) await deleteObject(s3, bucket, key);
    await s3.client.send(new DeleteBucketCommand({ Bucket: bucket }));
    s3.destroy();
  });

  const name = unique("registered");
  const location = `${bucket}/disk.img.manifest.xml`;
  const { ImageId: imageId } = await ec2.send(new RegisterImageCommand({ ImageLocation: location, Name: name }));
  assert.match(imageId ?? "", /^ami-[0-9a-f]{8}$/);
  let deregistered = false;
  t.after(async () => {
    if (!deregistered) await ec2.send(new DeregisterImageCommand({ ImageId: imageId })).catch(() => undefined);
  });

  // ec2-api fetches the parts, decrypts them with the cloud key and uploads to Glance in the background.
  const registered = await settled(imageId!);
  assert.equal(registered.State, "available", `image state ${registered.State} (see $OSP/logs/ec2-api.log)`);
  assert.equal(registered.Name, name);
  assert.equal(registered.ImageLocation, location);
  assert.equal(registered.ImageType, "machine");
  assert.equal(registered.Architecture, "x86_64");
  assert.equal(registered.RootDeviceType, "instance-store");
  assert.equal(registered.Public, false);

  const inGlance = await glanceImageNamed(name);
  assert.equal(inGlance.status, "active");
  assert.equal(inGlance.disk_format, "ami");
  assert.equal(inGlance.size, data.length);
  const sha1 = createHash("sha1");
  for await (const chunk of downloadImage(glance, inGlance)) sha1.update(chunk);
  assert.equal(sha1.digest("hex"), createHash("sha1").update(data).digest("hex"), "Glance holds the image's bytes");

  // Launch permission for everyone is Glance's public visibility (the only group ec2-api knows).
  await ec2.send(new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ Group: "all" }] } }));
  const shared = await ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: "launchPermission" }));
  assert.deepEqual(shared.LaunchPermissions, [{ Group: "all" }]);
  assert.equal((await glance.getImage(inGlance.id)).visibility, "public");
  assert.equal((await describeImage(imageId!)).Public, true);

  await ec2.send(
    new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Remove: [{ Group: "all" }] } }),
  );
  const unshared = await ec2.send(
    new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: "launchPermission" }),
  );
  assert.deepEqual(unshared.LaunchPermissions ?? [], []);
  assert.equal((await glance.getImage(inGlance.id)).visibility, "private");

  await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
  deregistered = true;
  await assert.rejects(
    ec2.send(new DescribeImagesCommand({ ImageIds: [imageId!] })),
    /InvalidAMIID\.NotFound|not found/i,
  );
  assert.equal(await glance.findImage(name), undefined, "the Glance image is gone");
});

test("DescribeInstances shows the volume-backed server; CreateImage images it through Nova and Cinder", async (t) => {
  const nova = new NovaClient(new KeystoneSession(ec2UserCloud(stack)));
  const server = await nova.findServer(stack.volumeBackedServer);
  assert.ok(server, `no server "${stack.volumeBackedServer}" in ${stack.project}: run \`aio.sh start ec2\``);
  assert.equal(server.status, "SHUTOFF");

  const reservations = (await ec2.send(new DescribeInstancesCommand({}))).Reservations ?? [];
  const instances = reservations.flatMap((r) => r.Instances ?? []);
  // ec2-api gives the Nova server's name as the private DNS name.
  const instance = instances.find((i) => i.PrivateDnsName === server.name);
  assert.ok(instance, `DescribeInstances: ${JSON.stringify(instances.map((i) => [i.InstanceId, i.PrivateDnsName]))}`);
  assert.match(instance.InstanceId ?? "", /^i-[0-9a-f]{8}$/);
  assert.equal(instance.State?.Name, "stopped");
  assert.equal(instance.RootDeviceType, "ebs");
  const root = instance.BlockDeviceMappings?.find((m) => m.DeviceName === instance.RootDeviceName);
  assert.match(root?.Ebs?.VolumeId ?? "", /^vol-[0-9a-f]{8}$/, "the root device is a volume");

  const name = unique("created");
  const made: { imageId?: string } = {};
  // Whatever happens below, neither the image nor a snapshot of the root volume outlives the test (nor a
  // snapshot an earlier run left).
  t.after(async () => {
    if (made.imageId) await ec2.send(new DeregisterImageCommand({ ImageId: made.imageId })).catch(() => undefined);
    const snapshots = await ec2.send(
      new DescribeSnapshotsCommand({ Filters: [{ Name: "volume-id", Values: [root!.Ebs!.VolumeId!] }] }),
    );
    for (const s of snapshots.Snapshots ?? []) await ec2.send(new DeleteSnapshotCommand({ SnapshotId: s.SnapshotId }));
  });
  const imageId = (await ec2.send(new CreateImageCommand({ InstanceId: instance.InstanceId, Name: name }))).ImageId;
  made.imageId = imageId;
  assert.match(imageId ?? "", /^ami-[0-9a-f]{8}$/);
  const created = await settled(imageId!);
  assert.equal(created.State, "available", `image state ${created.State} (see $OSP/logs/ec2-api.log)`);
  assert.equal(created.Name, name);
  assert.equal(created.RootDeviceType, "ebs");
  const rootMapping = created.BlockDeviceMappings?.find((m) => m.DeviceName === created.RootDeviceName);
  assert.match(rootMapping?.Ebs?.SnapshotId ?? "", /^snap-[0-9a-f]{8}$/, "the root is a new Cinder snapshot");
  const snapshot = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [rootMapping!.Ebs!.SnapshotId!] }));
  assert.equal(snapshot.Snapshots?.[0]?.VolumeId, root!.Ebs!.VolumeId, "a snapshot of the server's root volume");

  // In Glance: Nova's image of a volume-backed server, no data of its own, the volume mapping in its properties.
  const inGlance = await glanceImageNamed(name);
  assert.equal(inGlance.owner, stack.projectId);
  assert.ok(!inGlance.size, `a volume-backed server's image holds no data (size ${inGlance.size})`);
  assert.match(String((inGlance as Record<string, unknown>).block_device_mapping ?? ""), /"source_type": "snapshot"/);
});
