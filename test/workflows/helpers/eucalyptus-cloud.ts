/**
 * What the Eucalyptus workflow suites share: the CLI's environment for the test stack's ec2-api as `env-euca`
 * (the eucarc variables, a user key pair made for the run, Swift's signing region), and what they look at
 * beside the CLI — the keys a bucket holds (to prove a bundle is there, or that nothing is left), the Glance
 * image ec2-api made when it registered a bundle, and EC2's own view of an image.
 */
import assert from "node:assert/strict";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { DeleteBucketCommand } from "@aws-sdk/client-s3";
import { DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2";
import { listObjects } from "../../../src/providers/ec2/s3-listing.js";
import { deleteObject } from "../../../src/providers/ec2/s3-objects.js";
import type { S3Connection } from "../../../src/providers/ec2/s3-connection.js";
import { OpenStackProvider } from "../../../src/providers/openstack/openstack-provider.js";
import type { ProviderImage } from "../../../src/providers/provider.js";
import { ec2Client, ec2UserCloud, type Ec2ApiStack } from "../../helpers/ec2-api-stack.js";
import type { BundleKeys } from "../../helpers/euca2ools.js";
import { doneOf } from "../../helpers/event-lines.js";
import { runCli, type CliResult } from "../../helpers/tools.js";

/** Variables of the parent's environment that would name another cloud or bucket than the test's. */
const FOREIGN = /^(OS_|EC2_|AWS_|EUCA|S3_URL$|EUCALYPTUS_CERT$|CHROMOGENIC_BUNDLE_|CHROMOGENIC_NODE_)/;

/**
 * The CLI's environment: `env-euca` is the stack's ec2-api and Swift (the eucarc variables, the user's key and
 * certificate from `keys`, the cloud's certificate ec2-api decrypts with), `clouds` names the OpenStack clouds.
 */
export function eucaEnv(
  stack: Ec2ApiStack,
  keys: BundleKeys,
  paths: { clouds: string; state: string },
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !FOREIGN.test(k)));
  return {
    ...clean,
    EC2_URL: stack.ec2Url,
    S3_URL: stack.s3Url,
    EC2_ACCESS_KEY: stack.accessKeyId,
    EC2_SECRET_KEY: stack.secretAccessKey,
    EC2_USER_ID: stack.projectId,
    EC2_CERT: keys.userCert,
    EC2_PRIVATE_KEY: keys.userKey,
    EUCALYPTUS_CERT: stack.cloudCert,
    // Swift's s3api checks the signature with its own location; ec2-api takes any region.
    AWS_AUTH_REGION: stack.s3Region,
    OS_CLIENT_CONFIG_FILE: paths.clouds,
    CHROMOGENIC_STATE_DIR: paths.state,
    ...extra,
  };
}

/** The bucket bundles go to when no --bucket is given. */
export function defaultBucket(stack: Ec2ApiStack): string {
  return `chromogenic-${stack.projectId.toLowerCase()}`;
}

/** Runs the CLI and fails the test (with its stderr) unless it exits 0. */
export async function cliOk(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const r = await runCli(args, env);
  assert.equal(r.code, 0, `chromogenic ${args.join(" ")}: ${r.stderr}`);
  return r;
}

/** What `image upload --json` tells of the new image. */
export interface UploadedImage {
  readonly id: string;
  readonly name: string;
  readonly state: string;
  readonly sizeBytes?: number;
  readonly properties: Record<string, string>;
  readonly xenGuest?: boolean;
}

/** `image upload --cloud env-euca --json ...args FILE NAME`, which must succeed. */
export async function uploadToEuca(
  env: NodeJS.ProcessEnv,
  file: string,
  name: string,
  ...args: string[]
): Promise<UploadedImage> {
  const r = await cliOk(["image", "upload", "--cloud", "env-euca", "--json", ...args, file, name], env);
  return doneOf(r.stdout, "image upload") as unknown as UploadedImage;
}

/** The images `image list --cloud CLOUD --json` shows. */
export async function listedImages(env: NodeJS.ProcessEnv, cloud = "env-euca"): Promise<ProviderImage[]> {
  const r = await cliOk(["image", "list", "--cloud", cloud, "--json"], env);
  return (doneOf(r.stdout, "image list") as unknown as { images: ProviderImage[] }).images;
}

/** "bucket/NAME-1234abcd.manifest.xml" → the bucket and the prefix every object of that bundle starts with. */
export function bundleAt(location: string): { bucket: string; prefix: string } {
  const m = /^([^/]+)\/(.+)manifest\.xml$/.exec(location);
  assert.ok(m, `"${location}" is not BUCKET/PREFIX.manifest.xml`);
  return { bucket: m[1]!, prefix: m[2]! };
}

/** The keys under `prefix` in `bucket`, read through chromogenic's listing; none when there is no such bucket. */
export async function bucketKeys(s3: S3Connection, bucket: string, prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  try {
    for await (const o of listObjects(s3, bucket, prefix)) keys.push(o.key);
  } catch (e) {
    if (/NoSuchBucket/.test((e as Error).message)) return [];
    throw e;
  }
  return keys;
}

/** Empties and removes a bucket a test made (test cleanup: failures ignored). */
export async function removeBucket(s3: S3Connection, bucket: string): Promise<void> {
  for (const key of await bucketKeys(s3, bucket).catch(() => [])) {
    await deleteObject(s3, bucket, key).catch(() => undefined);
  }
  await s3.client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}

/** The EC2 user's project seen through Glance: where ec2-api puts what it registers. */
export function ec2ProjectGlance(stack: Ec2ApiStack): OpenStackProvider {
  return new OpenStackProvider(ec2UserCloud(stack));
}

/** The Glance image ec2-api made from the bundle at `location` (its image_location property names it). */
export async function glanceImageOf(glance: OpenStackProvider, location: string): Promise<ProviderImage | undefined> {
  for await (const image of glance.listImages()) if (image.properties?.image_location === location) return image;
  return undefined;
}

/** Every Glance image of the EC2 user's project with that name. */
export async function glanceImagesNamed(glance: OpenStackProvider, name: string): Promise<ProviderImage[]> {
  const out: ProviderImage[] = [];
  for await (const image of glance.listImages()) if (image.name === name) out.push(image);
  return out;
}

/** An image's bytes as Glance stores them, into `dir/FILE`; returns the path. */
export async function glanceBytes(glance: OpenStackProvider, id: string, dir: string, file: string): Promise<string> {
  const path = join(dir, file);
  await pipeline(glance.downloadImage(id), createWriteStream(path));
  return path;
}

/** EC2's record of an image (DescribeImages by id), undefined once it is gone or deregistered. */
export async function ec2Image(stack: Ec2ApiStack, id: string): Promise<Image | undefined> {
  const found = await ec2Client(stack)
    .send(new DescribeImagesCommand({ ImageIds: [id] }))
    .catch((e: Error) => {
      if (/NotFound|InvalidAMIID/i.test(`${e.name} ${e.message}`)) return { Images: [] };
      throw e;
    });
  return found.Images?.find((i) => i.ImageId === id && i.State !== "deregistered");
}

/** Deletes an image through the CLI (test cleanup: failures ignored). */
export async function deleteEucaImage(env: NodeJS.ProcessEnv, id: string): Promise<void> {
  await runCli(["image", "delete", "--cloud", "env-euca", id], env).catch(() => undefined);
}
