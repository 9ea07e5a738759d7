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
import { listObjects } from "../../src/providers/ec2/s3-listing.js";
import { instanceStoreAmi } from "../helpers/aws/instance-store-ami.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";
import { qemuCompare, runCli } from "../helpers/tools.js";

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
