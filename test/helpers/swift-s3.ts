/**
 * The real Swift (s3api + tempauth) that test/infra/swift/start.sh runs on 127.0.0.1:8080, for the S3 tests:
 * a connection as a given user and a fresh bucket per test that is emptied and removed afterwards. A test that
 * needs it fails, saying how to start it, when it is not running.
 */
import { randomBytes } from "node:crypto";
import { DeleteBucketCommand } from "@aws-sdk/client-s3";
import { S3Connection, type S3Settings } from "../../src/providers/ec2/s3-connection.js";
import { deleteObject } from "../../src/providers/ec2/s3-objects.js";
import { listObjects } from "../../src/providers/ec2/s3-listing.js";
import { abortMultipartUploadsIn } from "./s3-uploads.js";

export const SWIFT_S3_URL = process.env.CHROMOGENIC_SWIFT_S3_URL ?? "http://127.0.0.1:8080";

/** Credentials of start.sh's tempauth users. */
export const SWIFT_USERS = {
  tester: { accessKeyId: "test:tester", secretAccessKey: "testing" },
  tester2: { accessKeyId: "test2:tester2", secretAccessKey: "testing2" },
  reader: { accessKeyId: "test:reader", secretAccessKey: "reading" },
} as const;

let checked: Promise<void> | undefined;

/** Throws, saying what to run, unless the Swift proxy answers its healthcheck. */
export function requireSwift(): Promise<void> {
  checked ??= (async () => {
    let ok = false;
    try {
      const r = await fetch(`${SWIFT_S3_URL}/healthcheck`, { signal: AbortSignal.timeout(5000) });
      ok = r.ok && (await r.text()) === "OK";
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new Error(
        `Swift with s3api is not running at ${SWIFT_S3_URL}: start it with \`bash test/infra/swift/start.sh\` ` +
          "(needs Debian's python3-swift; scripts/test-all.sh starts it)",
      );
    }
  })();
  return checked;
}

export function swiftConnection(
  user: keyof typeof SWIFT_USERS = "tester",
  overrides: Partial<S3Settings> = {},
): S3Connection {
  return new S3Connection({
    cloud: "swift-test",
    endpoint: SWIFT_S3_URL,
    region: "us-east-1",
    ...SWIFT_USERS[user],
    ...overrides,
  });
}

/** A new bucket name, and its removal (objects, unfinished uploads, then the bucket) after the test. */
export function testBucket(t: { after(fn: () => Promise<void> | void): void }, s3: S3Connection): string {
  const bucket = `chromo-${randomBytes(6).toString("hex")}`;
  t.after(async () => {
    await abortMultipartUploadsIn(s3, bucket).catch(() => undefined);
    try {
      for await (const o of listObjects(s3, bucket, "")) await deleteObject(s3, bucket, o.key);
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }), { call: "DeleteBucket" });
    } catch {
      // never created, or already gone
    }
  });
  return bucket;
}
