/**
 * Buckets and whole objects against a real Swift with s3api (test/infra/swift/start.sh): create with and
 * without a canned ACL, put/get/head/delete with Content-MD5, the size bound of a get, and the sentences of a
 * wrong secret and of a missing object.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ensureBucket } from "../../../src/providers/ec2/s3-bucket.js";
import { deleteObject, getObject, headObject, putObject } from "../../../src/providers/ec2/s3-objects.js";
import { AwsServiceError } from "../../../src/providers/ec2/aws-errors.js";
import { errorCode } from "../../../src/util/errors.js";
import { requireSwift, swiftConnection, testBucket, SWIFT_S3_URL } from "../../helpers/swift-s3.js";

before(requireSwift);

test("ensureBucket creates a bucket once; the second call finds it", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  assert.equal(await ensureBucket(s3, bucket), true);
  assert.equal(await ensureBucket(s3, bucket), false);
});

test("a canned ACL Swift refuses (aws-exec-read) is a sentence that says which servers refuse it", async (t) => {
  const s3 = swiftConnection("tester", { cannedAcl: "aws-exec-read" });
  const bucket = testBucket(t, s3);
  const e = await ensureBucket(s3, bucket).then(
    () => assert.fail("Swift accepted aws-exec-read"),
    (x: unknown) => x,
  );
  assert.ok(e instanceof AwsServiceError);
  assert.equal(e.awsCode, "InvalidArgument");
  assert.match(e.message, new RegExp(`^S3 at ${SWIFT_S3_URL} refused CreateBucket with the canned ACL aws-exec-read`));
  assert.match(e.message, new RegExp(`bucket ${bucket}`));
  assert.match(e.message, /HTTP 400, request tx/);
  assert.match(e.message, /Swift's s3api and Ceph's radosgw do not accept aws-exec-read \(only Eucalyptus does\)/);
  // A canned ACL Swift does know is accepted: the option is passed through.
  const privateAcl = swiftConnection("tester", { cannedAcl: "private" });
  assert.equal(await ensureBucket(privateAcl, bucket), true);
});

test("a bucket the user may not read is refused with a sentence naming it", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  // test:reader is a user of the same Swift account without any rights of its own.
  const e = await ensureBucket(swiftConnection("reader"), bucket).then(
    () => assert.fail("a bucket the user may not read was taken as usable"),
    (x: unknown) => x as AwsServiceError,
  );
  assert.match(
    e.message,
    new RegExp(`refused HeadBucket bucket ${bucket}: access denied, the reply giving no reason .*\\(HTTP 403, `),
  );
  assert.equal(errorCode(e), "EAUTH", e.message);
});

test("put, head, get and delete a whole object", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const data = randomBytes(3 * 2 ** 20 + 17);
  await putObject(s3, bucket, "dir/object.bin", data);
  const head = await headObject(s3, bucket, "dir/object.bin");
  assert.equal(head?.size, data.length);
  assert.deepEqual(Buffer.from(await getObject(s3, bucket, "dir/object.bin", data.length)), data);
  await deleteObject(s3, bucket, "dir/object.bin");
  assert.equal(await headObject(s3, bucket, "dir/object.bin"), undefined);
  await deleteObject(s3, bucket, "dir/object.bin"); // absent: not an error
  const missing = (await getObject(s3, bucket, "dir/object.bin", 10).catch((e: unknown) => e)) as Error;
  assert.equal(errorCode(missing), "ENOENT");
  assert.match(missing.message, new RegExp(`refused GetObject s3://${bucket}/dir/object.bin: NoSuchKey`));
});

test("an object over the caller's bound is refused before it is read", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  await putObject(s3, bucket, "big", randomBytes(1_000_001));
  const e = (await getObject(s3, bucket, "big", 1_000_000).catch((x: unknown) => x)) as Error;
  assert.equal(errorCode(e), "ECORRUPT");
  assert.equal(e.message, `s3://${bucket}/big is 1000001 bytes, more than the 1000000 allowed for it: not read`);
});

test("a wrong secret is a SignatureDoesNotMatch sentence without the secret", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const secret = "wrong-secret-1234";
  const bad = swiftConnection("tester", { secretAccessKey: secret });
  const e = await putObject(bad, bucket, "k", Buffer.from("x")).catch((x: unknown) => x as AwsServiceError);
  assert.ok(e instanceof AwsServiceError, String(e));
  assert.equal(e.code, "EAUTH");
  assert.equal(e.awsCode, "SignatureDoesNotMatch");
  assert.match(
    e.message,
    new RegExp(`^S3 at ${SWIFT_S3_URL} refused PutObject s3://${bucket}/k: SignatureDoesNotMatch: `),
  );
  assert.ok(!e.message.includes(secret), e.message);
  assert.ok(!e.message.includes("testing"), e.message);
});

test("a server that is not there is a sentence naming its URL", async () => {
  const s3 = swiftConnection("tester", { endpoint: "http://127.0.0.1:9", maxAttempts: 1 });
  const e = (await headObject(s3, "chromo-nowhere", "k").catch((x: unknown) => x)) as Error;
  assert.equal(errorCode(e), "ECLOUD");
  assert.match(
    e.message,
    /^S3 at http:\/\/127\.0\.0\.1:9 could not be reached for HeadObject s3:\/\/chromo-nowhere\/k: /,
  );
  assert.match(e.message, /ECONNREFUSED/);
});

test("ensureBucket in a region: us-east-1 takes no LocationConstraint, another region is asked for", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  assert.equal(await ensureBucket(s3, bucket, undefined, "us-east-1"), true);
  // This Swift's s3api is in us-east-1 (start.sh): a bucket asked for in eu-west-1 is refused, which shows the
  // constraint was sent.
  const other = testBucket(t, s3);
  const e = await ensureBucket(s3, other, undefined, "eu-west-1").then(
    () => assert.fail("the region was not asked for"),
    (x: unknown) => x as AwsServiceError,
  );
  assert.match(String(e.awsCode), /InvalidLocationConstraint|IllegalLocationConstraint/, e.message);
});
