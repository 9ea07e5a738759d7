/**
 * S3BundleStore against a real Swift with s3api: the BundleStore contract (put whole, get within a bound, stat,
 * delete of a present and an absent file), keys under the prefix, and the bucket made on the first put.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { S3BundleStore } from "../../../src/providers/ec2/s3-bundle-store.js";
import { headObject } from "../../../src/providers/ec2/s3-objects.js";
import { listObjects } from "../../../src/providers/ec2/s3-listing.js";
import { errorCode } from "../../../src/util/errors.js";
import { requireSwift, swiftConnection, testBucket } from "../../helpers/swift-s3.js";

before(requireSwift);

test("a bundle's manifest and parts round-trip through a bucket and prefix", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  const store = new S3BundleStore(s3, bucket, "/images/debian/");
  assert.equal(store.label, `s3://${bucket}/images/debian`);
  assert.equal(new S3BundleStore(s3, bucket).label, `s3://${bucket}`);
  const manifest = Buffer.from("<manifest>…</manifest>");
  const part = randomBytes(10 * 2 ** 20);
  await store.put("debian.img.manifest.xml", manifest);
  await store.put("debian.img.part.00", part);
  assert.deepEqual(await store.stat("debian.img.part.00"), { size: part.length });
  assert.equal(await store.stat("debian.img.part.01"), undefined);
  assert.deepEqual(Buffer.from(await store.get("debian.img.part.00", part.length)), part);
  assert.deepEqual(Buffer.from(await store.get("debian.img.manifest.xml", 1024)), manifest);
  const keys: string[] = [];
  for await (const o of listObjects(s3, bucket, "")) keys.push(o.key);
  assert.deepEqual(keys, ["images/debian/debian.img.manifest.xml", "images/debian/debian.img.part.00"]);
  const tooBig = await store.get("debian.img.part.00", part.length - 1).catch((e: unknown) => e);
  assert.equal(errorCode(tooBig), "ECORRUPT");
  await store.delete("debian.img.part.00");
  await store.delete("debian.img.part.00");
  assert.equal(await headObject(s3, bucket, "images/debian/debian.img.part.00"), undefined);
  assert.throws(() => store.keyOf("../x"), /is not a bundle file name/);
});
