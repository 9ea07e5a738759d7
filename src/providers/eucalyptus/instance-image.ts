/**
 * An image of a running or stopped Eucalyptus instance, made the way its root device allows:
 * - EBS-backed: CreateImage, then wait for its snapshot;
 * - instance-store, with node-controller access configured (eucalyptus-settings.ts): the original chromogenic's
 *   way — find the instance's node (admin calls), copy its root disk off over SFTP with the host key checked,
 *   then bundle it (keeping the instance's kernel and ramdisk), upload and register. The copy is a temporary
 *   file, removed however this ends;
 * - instance-store otherwise: BundleInstance (the cloud bundles the disk into the bucket), wait for the task,
 *   register the manifest it wrote. Only the cloud's key opens that bundle (the node signs it and wraps its key
 *   for the cloud), so it is the job's image itself, never read here (EucalyptusProvider.instanceImageReadable).
 */
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { CreateImageFromInstanceRequest, ProviderImage } from "../provider.js";
import { createImage } from "../ec2/ec2-images.js";
import { waitForImage } from "../ec2/ec2-image-wait.js";
import { describeInstance } from "../ec2/ec2-instances.js";
import type { Ec2Instance } from "../ec2/ec2-records.js";
import { eucalyptusAdminEndpoints } from "./admin-services.js";
import { findInstanceNode } from "./instance-node.js";
import { bundleInstance, waitForBundleTask } from "./bundle-instance.js";
import type { EucalyptusProvider } from "./eucalyptus-provider.js";
import type { NodeCopySettings } from "./eucalyptus-settings.js";

export async function imageFromInstance(
  provider: EucalyptusProvider,
  request: CreateImageFromInstanceRequest,
): Promise<ProviderImage> {
  const instance = await describeInstance(provider.ec2, request.instance, request.signal);
  if (instance.rootDeviceType === "ebs") return await ebsImage(provider, instance, request);
  const nodeCopy = provider.settings.nodeCopy;
  return nodeCopy
    ? await copiedFromNode(provider, instance, nodeCopy, request)
    : await bundledByCloud(provider, instance, request);
}

async function ebsImage(
  provider: EucalyptusProvider,
  instance: Ec2Instance,
  request: CreateImageFromInstanceRequest,
): Promise<ProviderImage> {
  const id = await createImage(provider.ec2, instance.id, request.imageName, { signal: request.signal });
  await waitForImage(provider.ec2, id, {
    signal: request.signal,
    ...(request.timeoutMs ? { timeoutMs: request.timeoutMs } : {}),
  });
  return await registered(provider, id, request);
}

/** What a new image keeps of its instance: the architecture, and the kernel and ramdisk it boots with. */
function bootOf(instance: Ec2Instance): Record<string, string> {
  return {
    ...(instance.architecture ? { architecture: instance.architecture } : {}),
    ...(instance.kernelId ? { kernel_id: instance.kernelId } : {}),
    ...(instance.ramdiskId ? { ramdisk_id: instance.ramdiskId } : {}),
  };
}

async function copiedFromNode(
  provider: EucalyptusProvider,
  instance: Ec2Instance,
  settings: NodeCopySettings,
  request: CreateImageFromInstanceRequest,
): Promise<ProviderImage> {
  const config = provider.config;
  const credentials = { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey };
  const endpoints = eucalyptusAdminEndpoints(new URL(config.ec2Url).origin, { computeUrl: config.ec2Url });
  const node = await findInstanceNode(endpoints, credentials, instance.id, { signal: request.signal });
  const dir = await mkdtemp(join(tmpdir(), "chromogenic-node-copy-"));
  try {
    const output = join(dir, `${instance.id}.img`);
    // ssh2 is loaded only when a disk is copied off a node.
    const { copyInstanceDiskFromNode } = await import("./node-disk-copy.js");
    await copyInstanceDiskFromNode({
      host: node.nodeHost,
      ...(settings.port ? { port: settings.port } : {}),
      ...(settings.username ? { username: settings.username } : {}),
      privateKey: await readFile(settings.privateKeyPath),
      hostKey: settings.hostKey,
      owner: node.account,
      instanceId: instance.id,
      ...(settings.instancesDir ? { layout: { instancesDir: settings.instancesDir } } : {}),
      output,
      resume: false,
      signal: request.signal,
    });
    const size = (await stat(output)).size;
    return await provider.uploadImage(
      {
        name: request.imageName,
        diskFormat: "raw",
        sizeBytes: size,
        properties: { ...bootOf(instance), ...request.properties },
      },
      createReadStream(output, { highWaterMark: 4 * 2 ** 20 }),
      { signal: request.signal },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function bundledByCloud(
  provider: EucalyptusProvider,
  instance: Ec2Instance,
  request: CreateImageFromInstanceRequest,
): Promise<ProviderImage> {
  const config = provider.config;
  const bucket = provider.settings.bucket;
  const prefix = `${instance.id}-${randomBytes(4).toString("hex")}`;
  const task = await bundleInstance(
    provider.ec2.client,
    {
      instanceId: instance.id,
      bucket,
      prefix,
      owner: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    },
    request.signal,
  );
  const done = await waitForBundleTask(provider.ec2.client, task.bundleId, {
    signal: request.signal,
    ...(request.timeoutMs ? { timeoutMs: request.timeoutMs } : {}),
  });
  const location = done.manifestLocation ?? `${bucket}/${prefix}.manifest.xml`;
  const boot = bootOf(instance);
  const id = await provider.registerBundle(
    location,
    request.imageName,
    {
      ...(boot.architecture ? { architecture: boot.architecture } : {}),
      ...(boot.kernel_id ? { kernelId: boot.kernel_id } : {}),
      ...(boot.ramdisk_id ? { ramdiskId: boot.ramdisk_id } : {}),
    },
    request.signal,
  );
  return await registered(provider, id, request);
}

/** The image made in the cloud, made public first when asked. */
async function registered(
  provider: EucalyptusProvider,
  id: string,
  request: CreateImageFromInstanceRequest,
): Promise<ProviderImage> {
  if (request.visibility === "public") await provider.setPublic(id, request.signal);
  return await provider.madeImage(id);
}
