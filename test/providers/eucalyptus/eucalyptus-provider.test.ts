/**
 * EucalyptusProvider as a library against real servers: the test stack's ec2-api (EC2) and Swift (S3), named
 * `env-euca` by the eucarc variables (test/helpers/ec2-api-stack.ts). What the CLI suites do not reach:
 * - bytes streamed in with their size, listed with the size the manifest declares, read back whole and from an
 *   offset;
 * - kernel and ramdisk images bundled with Eucalyptus' `kernel_id`/`ramdisk_id` "true" mark, which is how
 *   ec2-api (and Eucalyptus) tell them from machine images; a machine image naming them;
 * - a part changed in the bucket, or a manifest checked with a certificate that did not sign it: the download
 *   fails before a single byte is delivered (ec2-api itself checks neither);
 * - requests the provider refuses by name (a format other than raw, no size, a name two images share).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { EucalyptusProvider } from "../../../src/providers/eucalyptus/eucalyptus-provider.js";
import { eucalyptusSettings } from "../../../src/providers/eucalyptus/eucalyptus-settings.js";
import { loadEc2CloudConfig } from "../../../src/providers/ec2/ec2-cloud-names.js";
import { deleteObject, getObject, putObject } from "../../../src/providers/ec2/s3-objects.js";
import type { S3Connection } from "../../../src/providers/ec2/s3-connection.js";
import type { ProviderImage } from "../../../src/providers/provider.js";
import { requireEc2Api, s3Connection, type Ec2ApiStack } from "../../helpers/ec2-api-stack.js";
import { makeBundleKeys, type BundleKeys } from "../../helpers/euca2ools.js";
import { pattern } from "../../helpers/tools.js";
import { bucketKeys, bundleAt, ec2Image, eucaEnv } from "../../workflows/helpers/eucalyptus-cloud.js";
import { scratchDir } from "../../workflows/helpers/workflow-steps.js";

const MiB = 2 ** 20;
const tag = randomUUID().slice(0, 8);
let stack: Ec2ApiStack;
let keys: BundleKeys;
let dir: string;
let s3: S3Connection;
let euca: EucalyptusProvider;
const made: string[] = [];

/** The provider `env-euca` names, with the environment changed by `extra`. */
function provider(extra: Record<string, string> = {}): EucalyptusProvider {
  const env = eucaEnv(stack, keys, { clouds: "/nonexistent/clouds.yaml", state: dir }, extra);
  const config = loadEc2CloudConfig("env-euca", env);
  return new EucalyptusProvider(config, eucalyptusSettings(env, config.userId));
}

before(async () => {
  stack = await requireEc2Api();
  dir = await scratchDir("chromo-euca-provider-");
  keys = await makeBundleKeys(dir);
  s3 = s3Connection(stack);
  euca = provider();
});

after(async () => {
  for (const id of made.reverse()) await euca.deleteImage(id).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function* chunked(data: Buffer, size = MiB): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Uploads `data` as a raw image with `properties`, deleted after the suite. */
async function store(name: string, data: Buffer, properties: Record<string, string> = {}): Promise<ProviderImage> {
  const image = await euca.uploadImage(
    { name: `chromo-euca-lib-${name}-${tag}`, diskFormat: "raw", sizeBytes: data.length, properties },
    chunked(data),
  );
  made.push(image.id);
  return image;
}

test("stored from a stream, its size from the manifest, read back whole and from an offset", async () => {
  const data = pattern(12 * MiB + 333, 5); // two parts: the second short
  const image = await store("stream", data);
  assert.equal(image.state, "ready");
  assert.equal(image.diskFormat, "raw");
  const again = await euca.getImage(image.name);
  assert.equal(again?.id, image.id, "found by name");
  assert.equal(again?.sizeBytes, data.length, "the size the manifest declares");
  assert.ok((await collect(euca.downloadImage(image.id))).equals(data), "the bytes read back");
  const offset = 10 * MiB + 7;
  const tail = await collect(euca.downloadImage(image.id, { offset }));
  assert.ok(tail.equals(data.subarray(offset)), "the bytes from an offset (a resumed download)");
});

test("kernel and ramdisk images carry Eucalyptus' mark and register as such; a machine image names them", async () => {
  const kernel = await store("kernel", pattern(MiB + 11, 6), { image_type: "kernel" });
  const ramdisk = await store("ramdisk", pattern(MiB + 13, 7), { image_type: "ramdisk" });
  assert.match(kernel.id, /^[ae]ki-/, "ec2-api registered a kernel image");
  assert.match(ramdisk.id, /^[ae]ri-/, "ec2-api registered a ramdisk image");
  for (const [image, field] of [
    [kernel, "kernel_id"],
    [ramdisk, "ramdisk_id"],
  ] as const) {
    const { bucket, prefix } = bundleAt(image.properties!.image_location!);
    const manifest = Buffer.from(await getObject(s3, bucket, `${prefix}manifest.xml`, MiB)).toString();
    assert.match(manifest, new RegExp(`<${field}>true</${field}>`), `${image.id}'s manifest`);
    assert.match(manifest, /<type>(kernel|ramdisk)<\/type>/);
  }
  // A Glance UUID in kernel_id (a property carried over from OpenStack) is no EC2 kernel: not passed on.
  const machine = await store("machine", pattern(2 * MiB, 8), {
    kernel_id: kernel.id,
    ramdisk_id: ramdisk.id,
  });
  const record = await ec2Image(stack, machine.id);
  assert.equal(record?.KernelId, kernel.id);
  assert.equal(record?.RamdiskId, ramdisk.id);
  assert.equal(machine.xenGuest, true, "an image that names a kernel is a Xen guest");
  const glanceKernel = await store("uuid-kernel", pattern(MiB, 9), { kernel_id: randomUUID() });
  assert.equal((await ec2Image(stack, glanceKernel.id))?.KernelId, undefined);
});

/** Flips one bit in the middle of an object of the bucket. */
async function flipBit(bucket: string, key: string): Promise<void> {
  const bytes = Buffer.from(await getObject(s3, bucket, key, 16 * MiB));
  bytes[bytes.length >> 1]! ^= 0x01;
  await putObject(s3, bucket, key, bytes);
}

/** Reads the whole image, which must fail with `expected`; the number of bytes delivered before that. */
async function failedRead(from: EucalyptusProvider, id: string, expected: RegExp): Promise<number> {
  let delivered = 0;
  await assert.rejects(async () => {
    for await (const c of from.downloadImage(id)) delivered += c.byteLength;
  }, expected);
  return delivered;
}

test("a part changed in the bucket: the download stops at that part, with an error naming it", async () => {
  const data = pattern(11 * MiB, 10); // incompressible: two parts
  const image = await store("tampered", data);
  const { bucket, prefix } = bundleAt(image.properties!.image_location!);
  // Each part is checked before its bytes are decrypted: the first part's bytes go out, the second's never.
  await flipBit(bucket, `${prefix}part.01`);
  const beforeSecond = await failedRead(euca, image.id, /part\.01/);
  assert.ok(beforeSecond < data.length, `all ${data.length} bytes delivered from a tampered bundle`);
  await flipBit(bucket, `${prefix}part.00`);
  assert.equal(await failedRead(euca, image.id, /part\.00/), 0, "bytes delivered from a tampered first part");
});

test("a manifest checked with a certificate that did not sign it: refused, nothing delivered", async () => {
  const image = await store("other-cert", pattern(MiB, 12));
  const stranger = provider({ EC2_CERT: keys.otherCert });
  assert.equal(await failedRead(stranger, image.id, /signature/i), 0);
});

test("refused by name: a format other than raw, an unknown size, a name two images share", async () => {
  await assert.rejects(
    euca.uploadImage({ name: "x", diskFormat: "qcow2", sizeBytes: 1 }, chunked(Buffer.alloc(1))),
    /stores raw disks \(bundles\), not qcow2/,
  );
  await assert.rejects(
    euca.uploadImage({ name: "x", diskFormat: "raw" }, chunked(Buffer.alloc(1))),
    /needs the image's size up front/,
  );
  const first = await store("twin", pattern(MiB, 13));
  const second = await euca.uploadImage(
    { name: first.name, diskFormat: "raw", sizeBytes: MiB },
    chunked(pattern(MiB, 14)),
  );
  made.push(second.id);
  await assert.rejects(euca.getImage(first.name), (e: Error) => {
    return e.message.includes(first.id) && e.message.includes(second.id) && /give an id/.test(e.message);
  });
  assert.equal(await euca.getImage("ami-00000000"), undefined, "an unknown id is no image");
});

test("an upload whose data fails mid-way, or falls short of its size: the error, and no object or image left", async () => {
  const keysUnder = (prefix: string) => bucketKeys(s3, euca.settings.bucket, prefix);
  const broken = `chromo-euca-lib-broken-${tag}`;
  async function* failing(): AsyncIterable<Uint8Array> {
    yield* chunked(pattern(23 * MiB, 15)); // two whole parts uploaded first
    throw new Error("the source disk went away");
  }
  await assert.rejects(
    euca.uploadImage({ name: broken, diskFormat: "raw", sizeBytes: 40 * MiB }, failing()),
    /the source disk went away/,
  );
  assert.deepEqual(await keysUnder(`${broken}-`), [], "objects left by the failed upload");
  const short = `chromo-euca-lib-short-${tag}`;
  await assert.rejects(
    euca.uploadImage({ name: short, diskFormat: "raw", sizeBytes: 30 * MiB }, chunked(pattern(21 * MiB, 16))),
    /short|ended|size|bytes/i,
  );
  assert.deepEqual(await keysUnder(`${short}-`), [], "objects left by the short upload");
  for (const name of [broken, short]) {
    const listed: string[] = [];
    for await (const i of euca.listImages()) if (i.name === name) listed.push(i.id);
    assert.deepEqual(listed, [], `an image named ${name} was registered`);
  }
});

test("an image whose manifest is gone: still found and deleted, its parts with it; the download names the manifest", async () => {
  const image = await store("no-manifest", pattern(11 * MiB, 17)); // two parts
  const { bucket, prefix } = bundleAt(image.properties!.image_location!);
  await deleteObject(s3, bucket, `${prefix}manifest.xml`);
  const found = await euca.getImage(image.id);
  assert.equal(found?.id, image.id, "an image with an unreadable manifest is still found");
  assert.equal(found?.sizeBytes, undefined);
  await assert.rejects(collect(euca.downloadImage(image.id)), /manifest\.xml/);
  await euca.deleteImage(image.id);
  assert.equal(await ec2Image(stack, image.id), undefined, "deregistered");
  assert.deepEqual(await bucketKeys(s3, bucket, prefix), [], "its parts are left in the bucket");
});
