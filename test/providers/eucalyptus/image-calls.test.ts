/**
 * The EC2 image calls (providers/ec2/ec2-images.ts, ec2-launch-permissions.ts) against the stand-in Eucalyptus
 * server's image registry (test/helpers/eucalyptus-image-registry.ts), whose RegisterImage looks for the
 * manifest in the real Swift: a manifest that is not there is refused with the cloud's code, names are found
 * with EC2's wildcards, an unknown id is the cloud's InvalidAMIID.NotFound, and a deregistered image is gone.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Ec2Connection } from "../../../src/providers/ec2/ec2-connection.js";
import { describeImages, deregisterImage, registerImage } from "../../../src/providers/ec2/ec2-images.js";
import { getLaunchPermissions, modifyLaunchPermissions } from "../../../src/providers/ec2/ec2-launch-permissions.js";
import { headObject, putObject } from "../../../src/providers/ec2/s3-objects.js";
import { ensureBucket } from "../../../src/providers/ec2/s3-bucket.js";
import { startEucalyptusAdminServer, type AdminServer } from "../../helpers/eucalyptus-admin-server.js";
import { requireSwift, swiftConnection, SWIFT_USERS, testBucket } from "../../helpers/swift-s3.js";

const ACCOUNT = "123456789012";
const s3 = swiftConnection("tester");
let server: AdminServer;
let ec2: Ec2Connection;

before(async () => {
  await requireSwift();
  server = await startEucalyptusAdminServer({
    keys: [{ ...SWIFT_USERS.tester, account: ACCOUNT, admin: false }],
    images: { manifestExists: async (bucket, key) => !!(await headObject(s3, bucket, key).catch(() => undefined)) },
  });
  ec2 = new Ec2Connection({
    name: "stand-in",
    kind: "eucalyptus",
    source: "test",
    ec2Url: `${server.url}/services/compute`,
    region: "eucalyptus",
    ...SWIFT_USERS.tester,
    tls: { verify: true },
  });
});

after(async () => {
  ec2?.destroy();
  await server?.close();
  s3.destroy();
});

test("RegisterImage of a manifest missing from its bucket is refused; one that is there is registered", async (t) => {
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  await assert.rejects(
    registerImage(ec2, { manifestLocation: `${bucket}/absent.manifest.xml`, name: "absent" }),
    /RegisterImage of .*absent\.manifest\.xml as "absent".*InvalidManifest/,
  );
  await putObject(s3, bucket, "debian.img.manifest.xml", Buffer.from("<manifest/>"));
  const id = await registerImage(ec2, {
    manifestLocation: `${bucket}/debian.img.manifest.xml`,
    name: "debian-12",
    architecture: "x86_64",
    kernelId: "eki-00000001",
  });
  t.after(() => server.images.images.clear());
  assert.match(id, /^emi-[0-9a-f]{8}$/);
  const [image] = await describeImages(ec2, { owners: ["self"], filters: { name: ["debian-*"] } });
  assert.equal(image?.id, id);
  assert.equal(image?.location, `${bucket}/debian.img.manifest.xml`);
  assert.equal(image?.kernelId, "eki-00000001");
  assert.equal(image?.state, "available");
  assert.deepEqual(await describeImages(ec2, { owners: ["self"], filters: { name: ["debian-?"] } }), []);

  await modifyLaunchPermissions(ec2, id, { add: { userIds: ["210987654321"], all: true } });
  assert.deepEqual(await getLaunchPermissions(ec2, id), { userIds: ["210987654321"], all: true });
  await modifyLaunchPermissions(ec2, id, { remove: { all: true } });
  assert.deepEqual(await getLaunchPermissions(ec2, id), { userIds: ["210987654321"], all: false });

  await deregisterImage(ec2, id);
  assert.deepEqual(await describeImages(ec2, { owners: ["self"] }), []);
  await assert.rejects(describeImages(ec2, { imageIds: [id] }), /InvalidAMIID\.NotFound/);
});
