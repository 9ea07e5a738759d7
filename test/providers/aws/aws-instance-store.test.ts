/**
 * AwsProvider's instance-store AMIs as a library, over the EC2 server written from the EC2 API Reference
 * (test/helpers/aws/ec2-aws-server.ts: API_RegisterImage.html with ImageLocation, API_DescribeImages.html —
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/) and the real Swift s3api standing for AWS's S3
 * (test/helpers/aws/instance-store-ami.ts), what the CLI suite does not reach:
 * - the AMI as a ProviderImage: raw, the manifest's size and bundled size, stream-only, not unreadable;
 * - its bytes whole, from an offset, and through a part cache that keeps each verified part;
 * - openImageInput refuses it (it has no snapshot); a part altered in the bucket fails the download naming it;
 * - RegisterImage of a manifest that is not in the bucket is the reference's InvalidManifest.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { AwsProvider } from "../../../src/providers/aws/aws-provider.js";
import { loadAwsCloudConfig } from "../../../src/providers/aws/aws-cloud-config.js";
import { awsSettings } from "../../../src/providers/aws/aws-settings.js";
import { registerImage } from "../../../src/providers/ec2/ec2-images.js";
import { getObject, putObject } from "../../../src/providers/ec2/s3-objects.js";
import { instanceStoreAmi } from "../../helpers/aws/instance-store-ami.js";

async function bytesOf(data: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of data) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

test("an instance-store AMI: raw of the manifest's size, stream-only, read whole, from an offset, part-cached", async (t) => {
  const { dir, env, disk, ami } = await instanceStoreAmi(t);
  const provider = new AwsProvider(loadAwsCloudConfig("aws", env), awsSettings(env));
  const expected = await readFile(disk);

  const image = await provider.getImage("web-store");
  assert.ok(image);
  assert.equal(image.id, ami);
  assert.equal(image.diskFormat, "raw");
  assert.equal(image.sizeBytes, expected.length, "the size the manifest declares");
  assert.ok(image.pieceBytes && image.pieceBytes > 11 * 2 ** 20, `bundled size ${image.pieceBytes}`);
  assert.equal(image.sequentialOnly, true);
  assert.equal(image.unreadable, undefined);
  const listed = [];
  for await (const i of provider.listImages()) listed.push(i);
  assert.deepEqual(
    listed.map((i) => [i.id, i.diskFormat, i.sequentialOnly]),
    [[ami, "raw", true]],
  );

  const cache = join(dir, "parts");
  const seen: number[] = [];
  const whole = await bytesOf(provider.downloadImage(ami, { partCache: cache, onProgress: (b) => seen.push(b) }));
  assert.ok(whole.equals(expected), "the AMI's bytes are the disk");
  assert.equal(seen.at(-1), expected.length);
  const kept = (await readdir(cache)).filter((n) => /^web\.part\.\d+$/.test(n));
  assert.ok(kept.length >= 2, `every verified part kept: ${kept.join(" ")}`);

  const offset = 9 * 2 ** 20 + 12345;
  const tail = await bytesOf(provider.downloadImage(ami, { offset, partCache: cache }));
  assert.ok(tail.equals(expected.subarray(offset)), "from an offset: the rest of the disk");

  await assert.rejects(provider.openImageInput(ami), /instance-store backed: it has no snapshot/);
});

test("a part altered in the bucket fails the download naming it; a missing manifest is InvalidManifest", async (t) => {
  const { s3, bucket, ec2, env, ami } = await instanceStoreAmi(t);
  const provider = new AwsProvider(loadAwsCloudConfig("aws", env), awsSettings(env));
  const key = "amis/web.part.00";
  const part = Buffer.from(await getObject(s3, bucket, key, 64 * 2 ** 20));
  part[1000] = part[1000]! ^ 0xff;
  await putObject(s3, bucket, key, part);
  await assert.rejects(bytesOf(provider.downloadImage(ami)), /web\.part\.00 does not match its digest/);

  await assert.rejects(
    registerImage(ec2, { manifestLocation: `${bucket}/amis/absent.manifest.xml`, name: "absent" }),
    /InvalidManifest/,
  );
});
