/**
 * The EC2 calls against a local server answering EC2 Query XML (test/helpers/fake-ec2.ts): the request each
 * call sends (its path under a Eucalyptus-style endpoint, its parameters, SigV4 for the cloud's region), how
 * real-shaped replies become records, error replies as sentences with the server's code and request id, and
 * waiting for an image. Against a real server (OpenStack ec2-api) these run in the integration tests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createImage,
  deregisterImage,
  describeImage,
  describeImages,
  registerImage,
} from "../../../src/providers/ec2/ec2-images.js";
import { getLaunchPermissions, modifyLaunchPermissions } from "../../../src/providers/ec2/ec2-launch-permissions.js";
import { describeInstance, describeInstances } from "../../../src/providers/ec2/ec2-instances.js";
import { waitForImage } from "../../../src/providers/ec2/ec2-image-wait.js";
import { AwsServiceError } from "../../../src/providers/ec2/aws-errors.js";
import { errorCode } from "../../../src/util/errors.js";
import { ec2ErrorReply, ec2Reply, fakeEc2, type CannedReply } from "../../helpers/fake-ec2.js";

const imageItem = (id: string, state: string, extra = "") =>
  `<item><imageId>${id}</imageId><imageLocation>bucket/${id}.manifest.xml</imageLocation><imageState>${state}</imageState>` +
  `<imageOwnerId>000011112222</imageOwnerId><isPublic>false</isPublic><architecture>x86_64</architecture>` +
  `<imageType>machine</imageType><name>${id}-name</name>${extra}</item>`;

const EMI = imageItem(
  "emi-0a1b2c3d",
  "available",
  "<kernelId>eki-11111111</kernelId><ramdiskId>eri-22222222</ramdiskId><rootDeviceType>instance-store</rootDeviceType>" +
    "<rootDeviceName>/dev/sda1</rootDeviceName><virtualizationType>paravirtual</virtualizationType>" +
    "<blockDeviceMapping><item><deviceName>/dev/sda2</deviceName><virtualName>ephemeral0</virtualName></item>" +
    "<item><deviceName>/dev/sdb</deviceName><ebs><snapshotId>snap-1</snapshotId><volumeSize>8</volumeSize>" +
    "<deleteOnTermination>true</deleteOnTermination></ebs></item></blockDeviceMapping>",
);

test("DescribeImages: the request under /services/compute, signed for the region; items become records", async (t) => {
  const { ec2, requests } = await fakeEc2(t, () => ec2Reply("DescribeImages", `<imagesSet>${EMI}</imagesSet>`));
  const images = await describeImages(ec2, {
    imageIds: ["emi-0a1b2c3d"],
    owners: ["self"],
    filters: { "image-type": ["machine", "kernel"] },
  });
  const r = requests[0]!;
  assert.equal(r.path, "/services/compute/");
  assert.match(r.authorization, /^AWS4-HMAC-SHA256 Credential=AKIFAKE\/\d{8}\/eucalyptus\/ec2\/aws4_request/);
  assert.equal(r.params.get("ImageId.1"), "emi-0a1b2c3d");
  assert.equal(r.params.get("Owner.1"), "self");
  assert.equal(r.params.get("Filter.1.Name"), "image-type");
  assert.equal(r.params.get("Filter.1.Value.2"), "kernel");
  assert.deepEqual(images, [
    {
      id: "emi-0a1b2c3d",
      name: "emi-0a1b2c3d-name",
      state: "available",
      location: "bucket/emi-0a1b2c3d.manifest.xml",
      ownerId: "000011112222",
      public: false,
      architecture: "x86_64",
      imageType: "machine",
      kernelId: "eki-11111111",
      ramdiskId: "eri-22222222",
      rootDeviceType: "instance-store",
      rootDeviceName: "/dev/sda1",
      virtualizationType: "paravirtual",
      blockDeviceMappings: [
        { deviceName: "/dev/sda2", virtualName: "ephemeral0" },
        { deviceName: "/dev/sdb", snapshotId: "snap-1", volumeSizeGiB: 8, deleteOnTermination: true },
      ],
    },
  ]);
});

test("an image without an id in the reply is an error naming the call, not an undefined later", async (t) => {
  const { ec2 } = await fakeEc2(t, () =>
    ec2Reply("DescribeImages", "<imagesSet><item><imageState>available</imageState></item></imagesSet>"),
  );
  await assert.rejects(describeImages(ec2), (e: Error) => {
    assert.equal(errorCode(e), "ECLOUD");
    assert.match(e.message, /^EC2 at http:\/\/127\.0\.0\.1:\d+\/services\/compute: DescribeImages: the reply is not/);
    return true;
  });
  const none = await fakeEc2(t, () => ec2Reply("DescribeImages", "<imagesSet/>"));
  await assert.rejects(describeImage(none.ec2, "emi-00000000"), {
    code: "ENOENT",
    message: /has no image emi-00000000$/,
  });
});

test("RegisterImage of a bundle manifest sends its location, kernel, ramdisk and block device mappings", async (t) => {
  const { ec2, requests } = await fakeEc2(t, () => ec2Reply("RegisterImage", "<imageId>emi-99999999</imageId>"));
  const id = await registerImage(ec2, {
    manifestLocation: "my-bucket/debian.img.manifest.xml",
    name: "debian",
    architecture: "x86_64",
    kernelId: "eki-11111111",
    ramdiskId: "eri-22222222",
    rootDeviceName: "/dev/sda1",
    blockDeviceMappings: [
      { deviceName: "/dev/sda2", virtualName: "ephemeral0" },
      { deviceName: "/dev/sdc", noDevice: true },
    ],
  });
  assert.equal(id, "emi-99999999");
  const p = requests[0]!.params;
  assert.equal(p.get("ImageLocation"), "my-bucket/debian.img.manifest.xml");
  assert.equal(p.get("Name"), "debian");
  assert.equal(p.get("Architecture"), "x86_64");
  assert.equal(p.get("KernelId"), "eki-11111111");
  assert.equal(p.get("RamdiskId"), "eri-22222222");
  assert.equal(p.get("RootDeviceName"), "/dev/sda1");
  assert.equal(p.get("BlockDeviceMapping.1.DeviceName"), "/dev/sda2");
  assert.equal(p.get("BlockDeviceMapping.1.VirtualName"), "ephemeral0");
  assert.equal(p.get("BlockDeviceMapping.2.NoDevice"), "");
  await assert.rejects(registerImage(ec2, { manifestLocation: "no-bucket.manifest.xml", name: "x" }), {
    code: "EUSAGE",
    message: /is not a bundle manifest location: BUCKET\/PREFIX\.manifest\.xml/,
  });
});

test("RegisterImage from a snapshot puts the root device first, made from the snapshot", async (t) => {
  const { ec2, requests } = await fakeEc2(t, () => ec2Reply("RegisterImage", "<imageId>emi-88888888</imageId>"));
  assert.equal(
    await registerImage(ec2, { snapshotId: "snap-12345678", rootDeviceName: "/dev/sda", name: "from-snap" }),
    "emi-88888888",
  );
  const p = requests[0]!.params;
  assert.equal(p.get("ImageLocation"), null);
  assert.equal(p.get("RootDeviceName"), "/dev/sda");
  assert.equal(p.get("BlockDeviceMapping.1.DeviceName"), "/dev/sda");
  assert.equal(p.get("BlockDeviceMapping.1.Ebs.SnapshotId"), "snap-12345678");
  assert.equal(p.get("BlockDeviceMapping.1.Ebs.DeleteOnTermination"), "true");
});

test("an error reply is a sentence with the call, the server's code and message, and the request id", async (t) => {
  const { ec2 } = await fakeEc2(t, (action) =>
    action === "RegisterImage"
      ? ec2ErrorReply("InvalidManifest", "HTTP 403 (Forbidden) for URL http://s3/my-bucket/x.manifest.xml", "req-42")
      : ec2ErrorReply("AuthFailure", "Signature not valid", "req-43", 401),
  );
  const e = await registerImage(ec2, { manifestLocation: "my-bucket/x.manifest.xml", name: "x" }).catch(
    (x: unknown) => x as AwsServiceError,
  );
  assert.ok(e instanceof AwsServiceError);
  assert.equal(
    e.message,
    `EC2 at ${ec2.endpoint} refused RegisterImage of my-bucket/x.manifest.xml as "x": InvalidManifest: HTTP 403 ` +
      "(Forbidden) for URL http://s3/my-bucket/x.manifest.xml (HTTP 400, request req-42)",
  );
  assert.equal(e.awsCode, "InvalidManifest");
  assert.equal(e.requestId, "req-42");
  assert.equal(e.code, "ECLOUD");
  const auth = (await deregisterImage(ec2, "emi-1").catch((x: unknown) => x)) as AwsServiceError;
  assert.equal(auth.code, "EAUTH");
  assert.match(
    auth.message,
    /refused DeregisterImage emi-1: AuthFailure: Signature not valid \(HTTP 401, request req-43\)$/,
  );
  assert.ok(!auth.message.includes("fake-secret"));
});

test("launch permissions: read users and the group all; add and remove in one call", async (t) => {
  const { ec2, requests } = await fakeEc2(t, (action) =>
    action === "DescribeImageAttribute"
      ? ec2Reply(
          "DescribeImageAttribute",
          "<imageId>emi-1</imageId><launchPermission><item><group>all</group></item>" +
            "<item><userId>111122223333</userId></item></launchPermission>",
        )
      : ec2Reply("ModifyImageAttribute", "<return>true</return>"),
  );
  assert.deepEqual(await getLaunchPermissions(ec2, "emi-1"), { userIds: ["111122223333"], all: true });
  assert.equal(requests[0]!.params.get("Attribute"), "launchPermission");
  await modifyLaunchPermissions(ec2, "emi-1", { add: { userIds: ["444455556666"] }, remove: { all: true } });
  const p = requests[1]!.params;
  assert.equal(p.get("ImageId"), "emi-1");
  assert.equal(p.get("LaunchPermission.Add.1.UserId"), "444455556666");
  assert.equal(p.get("LaunchPermission.Remove.1.Group"), "all");
  await modifyLaunchPermissions(ec2, "emi-1", {});
  assert.equal(requests.length, 2, "nothing to change: no call");
});

test("CreateImage and DescribeInstances: root device type, kernel, ramdisk, image and state", async (t) => {
  const instance =
    "<item><instanceId>i-0000abcd</instanceId><imageId>emi-0a1b2c3d</imageId><instanceState><code>16</code>" +
    "<name>running</name></instanceState><kernelId>eki-11111111</kernelId><ramdiskId>eri-22222222</ramdiskId>" +
    "<architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/sda1</rootDeviceName>" +
    "<placement><availabilityZone>one</availabilityZone></placement><blockDeviceMapping><item>" +
    "<deviceName>/dev/sda1</deviceName><ebs><volumeId>vol-1</volumeId><status>attached</status></ebs></item>" +
    "</blockDeviceMapping></item>";
  const { ec2, requests } = await fakeEc2(t, (action) =>
    action === "CreateImage"
      ? ec2Reply("CreateImage", "<imageId>emi-77777777</imageId>")
      : ec2Reply(
          "DescribeInstances",
          `<reservationSet><item><reservationId>r-1</reservationId><instancesSet>${instance}</instancesSet></item></reservationSet>`,
        ),
  );
  assert.equal(await createImage(ec2, "i-0000abcd", "snap of it", { noReboot: true }), "emi-77777777");
  assert.equal(requests[0]!.params.get("InstanceId"), "i-0000abcd");
  assert.equal(requests[0]!.params.get("NoReboot"), "true");
  assert.deepEqual(await describeInstances(ec2, ["i-0000abcd"]), [
    {
      id: "i-0000abcd",
      imageId: "emi-0a1b2c3d",
      state: "running",
      rootDeviceType: "ebs",
      rootDeviceName: "/dev/sda1",
      kernelId: "eki-11111111",
      ramdiskId: "eri-22222222",
      architecture: "x86_64",
      availabilityZone: "one",
      volumes: [{ deviceName: "/dev/sda1", volumeId: "vol-1" }],
    },
  ]);
  assert.equal(requests[1]!.params.get("InstanceId.1"), "i-0000abcd");
  await assert.rejects(describeInstance(ec2, "i-ffffffff"), { code: "ENOENT", message: /has no instance i-ffffffff$/ });
});

test("waitForImage: unknown, then pending, then available; failed, time limit and cancel are errors", async (t) => {
  const sequence: CannedReply[] = [
    ec2ErrorReply("InvalidAMIID.NotFound", "The image id '[emi-1]' does not exist"),
    ec2Reply("DescribeImages", `<imagesSet>${imageItem("emi-1", "pending")}</imagesSet>`),
    ec2Reply("DescribeImages", `<imagesSet>${imageItem("emi-1", "available")}</imagesSet>`),
  ];
  const { ec2 } = await fakeEc2(t, (_a, _p, n) => sequence[Math.min(n, 2)]!);
  const states: string[] = [];
  const image = await waitForImage(ec2, "emi-1", { intervalMs: 10, onState: (s) => states.push(s) });
  assert.equal(image.state, "available");
  assert.deepEqual(states, ["pending", "available"]);

  const failed = await fakeEc2(t, () =>
    ec2Reply(
      "DescribeImages",
      `<imagesSet>${imageItem("emi-2", "failed", "<stateReason><code>x</code><message>bad bundle</message></stateReason>")}</imagesSet>`,
    ),
  );
  await assert.rejects(waitForImage(failed.ec2, "emi-2", { intervalMs: 10 }), {
    code: "EWAIT",
    message: /image emi-2 at EC2 .* ended failed instead of becoming available: bad bundle$/,
  });
  const pending = await fakeEc2(t, () =>
    ec2Reply("DescribeImages", `<imagesSet>${imageItem("emi-3", "pending")}</imagesSet>`),
  );
  await assert.rejects(waitForImage(pending.ec2, "emi-3", { intervalMs: 20, timeoutMs: 100 }), {
    code: "EWAIT",
    message: /is still pending after \d+ s \(the limit\)$/,
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(waitForImage(pending.ec2, "emi-3", { intervalMs: 1000, signal: controller.signal }), {
    code: "EABORTED",
  });
});
