/**
 * `bundle --bucket` and `unbundle --bucket` against the real Swift with s3api (test/infra/swift/start.sh): the
 * bundle goes straight into the bucket under its prefix with nothing written locally, comes back identical, and
 * a part altered in the bucket is refused with nothing left in the destination. The cloud is the eucarc's
 * (`env-euca`), as a euca2ools user has it.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeBundleKeys, type BundleKeys } from "../../helpers/euca2ools.js";
import { requireSwift, SWIFT_S3_URL, SWIFT_USERS, swiftConnection, testBucket } from "../../helpers/swift-s3.js";
import { listObjects } from "../../../src/providers/ec2/s3-listing.js";
import { S3BundleStore } from "../../../src/providers/ec2/s3-bundle-store.js";
import { pattern, runCli, scratch } from "../../helpers/tools.js";

before(requireSwift);

const MiB = 2 ** 20;

/** The user's eucarc for Swift (no EC2 endpoint is used), with TMPDIR `dir`. */
function eucarc(keys: BundleKeys, dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    EC2_URL: "http://127.0.0.1:9/services/compute",
    S3_URL: SWIFT_S3_URL,
    EC2_ACCESS_KEY: SWIFT_USERS.tester.accessKeyId,
    EC2_SECRET_KEY: SWIFT_USERS.tester.secretAccessKey,
    AWS_AUTH_REGION: "us-east-1",
    EC2_PRIVATE_KEY: keys.userKey,
    EC2_CERT: keys.userCert,
    EUCALYPTUS_CERT: keys.cloudCert,
    EC2_USER_ID: "123456789012",
    TMPDIR: dir,
  };
}

test("a bundle straight to a bucket and back, and a part altered there refused", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  const image = join(dir, "disk.img");
  const data = pattern(3 * MiB + 17, 13);
  await writeFile(image, data);
  const env = eucarc(keys, dir);
  const r = await runCli(["bundle", "-i", image, "--bucket", `${bucket}/images`, "--part-size", String(MiB)], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`wrote s3://${bucket}/images/disk\\.img\\.manifest\\.xml`));
  const stored: string[] = [];
  for await (const o of listObjects(s3, bucket, "")) stored.push(o.key);
  assert.deepEqual(stored.sort(), [
    "images/disk.img.manifest.xml",
    "images/disk.img.part.00",
    "images/disk.img.part.01",
    "images/disk.img.part.02",
    "images/disk.img.part.03",
  ]);
  assert.deepEqual(
    await readdir(dir).then((names) => names.filter((n) => n.startsWith("bundle-"))),
    [],
    "no local parts",
  );

  const back = join(dir, "back");
  const u = await runCli(["unbundle", "--bucket", `${bucket}/images`, "-m", "disk.img.manifest.xml", "-d", back], env);
  assert.equal(u.code, 0, u.stderr);
  assert.ok((await readFile(join(back, "disk.img"))).equals(data));

  const store = new S3BundleStore(s3, bucket, "images");
  const part = Buffer.from(await store.get("disk.img.part.02", 2 * MiB));
  part[7]! ^= 0xff;
  await store.put("disk.img.part.02", part);
  const refusedInto = join(dir, "refused");
  await mkdir(refusedInto);
  const bad = await runCli(
    ["unbundle", "--bucket", `${bucket}/images`, "-m", "disk.img.manifest.xml", "-d", refusedInto],
    env,
  );
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /s3:\/\/.*disk\.img\.part\.02 does not match its digest/);
  assert.deepEqual(await readdir(refusedInto), []);
});

test("--bucket-acl, and --acl its old hidden name, reach the bucket; both with different values refused", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  const image = join(dir, "disk.img");
  await writeFile(image, pattern(MiB, 5));
  const env = eucarc(keys, dir);
  // Swift refuses Eucalyptus' canned ACL: the refusal proves the option reached CreateBucket.
  for (const flag of ["--bucket-acl", "--acl"]) {
    const r = await runCli(["bundle", "-i", image, "--bucket", bucket, flag, "aws-exec-read"], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /CreateBucket .*aws-exec-read.*only Eucalyptus does/, flag);
  }
  const both = await runCli(
    ["bundle", "-i", image, "--bucket", bucket, "--acl", "private", "--bucket-acl", "public-read"],
    env,
  );
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /--acl is the old name of --bucket-acl: give one of them/);
  const help = await runCli(["bundle", "--help"], env);
  assert.match(help.stdout, /--bucket-acl <canned-acl>/);
  assert.doesNotMatch(help.stdout, /--acl\b/, "the old name is not shown");
});
