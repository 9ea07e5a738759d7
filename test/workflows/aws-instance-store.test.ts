/**
 * Instance-store AMIs on AWS through the CLI: a disk bundled by our own bundle code (`chromogenic bundle
 * --cloud aws --bucket …`, as ec2-bundle-image and ec2-upload-bundle would) into the real Swift s3api
 * (test/helpers/swift-s3.ts) standing for AWS's S3 (AWS_ENDPOINT_URL_S3, Swift's tempauth keys as the AWS keys),
 * registered by ImageLocation in the EC2 server written from the EC2 API Reference
 * (test/helpers/aws/ec2-aws-server.ts; API_RegisterImage.html, API_DescribeImages.html,
 * API_DeregisterImage.html at https://docs.aws.amazon.com/AWSEC2/latest/APIReference/), then read back with the
 * key it was bundled for (EC2_PRIVATE_KEY, EC2_CERT):
 * - exported to qcow2 and migrated to a local store, both equal to the disk (`qemu-img compare`), the bundle
 *   downloaded once as a stream (it cannot be read in place as the account's EBS-backed AMIs are);
 * - another key, or none: a clear error naming the setting, and no output written;
 * - `image delete` deregisters the AMI and removes its bundle from the bucket.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { registerImage } from "../../src/providers/ec2/ec2-images.js";
import { listObjects } from "../../src/providers/ec2/s3-listing.js";
import { awsCliEnv } from "../helpers/aws/aws-home.js";
import { startEc2AwsServer } from "../helpers/aws/ec2-aws-server.js";
import { FakeAwsAccount } from "../helpers/aws/fake-aws-account.js";
import { makeBundleKeys } from "../helpers/euca2ools.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";
import { requireSwift, swiftConnection, SWIFT_S3_URL, SWIFT_USERS, testBucket } from "../helpers/swift-s3.js";
import { makeRaw, pattern, qemuCompare, runCli, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;

/** An account whose S3 is Swift, a 48 MiB disk bundled into it and registered as an instance-store AMI. */
async function instanceStoreAmi(t: { after(fn: () => Promise<void> | void): void }) {
  await requireSwift();
  const dir = await scratch(t, "chromo-aws-bundle-");
  const s3 = swiftConnection();
  t.after(() => s3.destroy());
  const bucket = testBucket(t, s3);
  // Swift checks SigV4 for its own region, us-east-1; the EC2 server knows Swift's key, as AWS knows one key pair.
  const account = new FakeAwsAccount({ region: "us-east-1" });
  const swiftKey = SWIFT_USERS.tester;
  account.credentials.set(swiftKey.accessKeyId, { secretAccessKey: swiftKey.secretAccessKey });
  const { server, ec2 } = await startEc2AwsServer(t, account, { s3 });
  const keys = await makeBundleKeys(dir);
  const env: NodeJS.ProcessEnv = {
    ...awsCliEnv(dir, swiftKey, account.region),
    AWS_ENDPOINT_URL_EC2: server.url,
    AWS_ENDPOINT_URL_S3: SWIFT_S3_URL,
    EC2_PRIVATE_KEY: keys.userKey,
    EC2_CERT: keys.userCert,
  };
  const disk = join(dir, "disk.raw");
  await makeRaw(disk, 48 * MiB, [
    { offset: 0, data: pattern(64 * 1024, 5) },
    { offset: 9 * MiB + 77, data: pattern(11 * MiB, 6) },
    { offset: 47 * MiB, data: pattern(MiB, 7) },
  ]);
  const bundled = await runCli(
    [
      "bundle", "-i", disk, "-p", "web", "-r", "x86_64", "-k", keys.userKey, "-c", keys.userCert,
      "--ec2cert", keys.cloudCert, "-u", account.accountId, "--cloud", "aws", "--bucket", `${bucket}/amis`, "-q",
    ],
    env,
  ); // prettier-ignore
  assert.equal(bundled.code, 0, bundled.stderr + bundled.stdout);
  const ami = await registerImage(ec2, {
    manifestLocation: `${bucket}/amis/web.manifest.xml`,
    name: "web-store",
    virtualizationType: "hvm",
  });
  return { dir, s3, bucket, account, env, keys, disk, ami };
}

test("an instance-store AMI exported to qcow2 and migrated to a local store, equal to the bundled disk", async (t) => {
  const { dir, account, env, disk, ami } = await instanceStoreAmi(t);
  const image = account.images.get(ami)!;
  assert.equal(image.rootDeviceType, "instance-store");
  assert.equal(image.architecture, "x86_64", "the architecture the manifest declares");

  const out = join(dir, "out.qcow2");
  const exported = await runCli(
    ["export", "--cloud", "aws", "--image", "web-store", "--format", "qcow2", "--json", out],
    env,
  );
  assert.equal(exported.code, 0, exported.stderr + exported.stdout);
  const plan = (doneOf(exported.stdout, "export") as unknown as { plan: { sourceAccess: string } }).plan;
  assert.equal(plan.sourceAccess, "download", "a bundle is downloaded as a stream, never read in place");
  const compared = await qemuCompare(disk, out);
  assert.equal(compared.code, 0, compared.stdout + compared.stderr);

  const store = join(dir, "store");
  const migrated = await runCli(
    ["migrate", "--from", "aws", "--image", ami, "--to", `local:${store}`, "--format", "qcow2", "--json"],
    env,
  );
  assert.equal(migrated.code, 0, migrated.stderr + migrated.stdout);
  const copy = (doneOf(migrated.stdout, "migrate") as unknown as { image: { id: string } }).image.id;
  const back = join(dir, "back.raw");
  const fetched = await runCli(["export", "--cloud", `local:${store}`, "--image", copy, "--format", "raw", back], env);
  assert.equal(fetched.code, 0, fetched.stderr + fetched.stdout);
  const same = await qemuCompare(disk, back);
  assert.equal(same.code, 0, same.stdout + same.stderr);
});

test("another key, or none: a clear error naming EC2_PRIVATE_KEY, and no output", async (t) => {
  const { dir, env, keys, ami } = await instanceStoreAmi(t);
  const out = join(dir, "wrong.qcow2");
  const exportTo = (e: NodeJS.ProcessEnv) =>
    runCli(["export", "--cloud", "aws", "--image", ami, "--format", "qcow2", "--json", out], e);

  const { EC2_CERT: _cert, ...noCert } = env;
  const wrong = await exportTo({ ...noCert, EC2_PRIVATE_KEY: keys.otherKey });
  assert.notEqual(wrong.code, 0, wrong.stdout);
  const message = errorOf(wrong.stdout).message;
  assert.match(message, /signature does not match/);
  assert.match(message, /EC2_PRIVATE_KEY \(.*other\.key\) is not that key/);

  // The right signer's certificate, another private key: the signature holds, the AES key does not open.
  const unwrap = await exportTo({ ...env, EC2_PRIVATE_KEY: keys.otherKey });
  assert.notEqual(unwrap.code, 0, unwrap.stdout);
  assert.match(errorOf(unwrap.stdout).message, /this key does not open the bundle.*EC2_PRIVATE_KEY/);

  const { EC2_PRIVATE_KEY: _key, ...noKey } = env;
  const none = await exportTo(noKey);
  assert.notEqual(none.code, 0, none.stdout);
  assert.match(errorOf(none.stdout).message, /instance-store AMI .*set EC2_PRIVATE_KEY/);
  await assert.rejects(access(out), "no output is left behind");
});

test("image delete deregisters an instance-store AMI and removes its bundle", async (t) => {
  const { s3, bucket, account, env, ami } = await instanceStoreAmi(t);
  const keysIn = async () => {
    const keys: string[] = [];
    for await (const o of listObjects(s3, bucket, "amis/")) keys.push(o.key);
    return keys;
  };
  assert.ok((await keysIn()).length >= 2, "a manifest and its parts are in the bucket");
  const deleted = await runCli(["image", "delete", "--cloud", "aws", ami], env);
  assert.equal(deleted.code, 0, deleted.stderr + deleted.stdout);
  assert.equal(account.images.has(ami), false, "the AMI is deregistered");
  assert.deepEqual(await keysIn(), [], "no object of the bundle is left");
});
