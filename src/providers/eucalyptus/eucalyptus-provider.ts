/**
 * `ImageProvider` for a Eucalyptus cloud (and any EC2 endpoint with an S3 beside it that registers bundles):
 * EC2 for the image records (DescribeImages, RegisterImage, DeregisterImage, launch permissions), S3 for the
 * bundles that hold an instance-store image's bytes. An image's data is the disk its bundle holds: read by
 * fetching the parts, each checked against the manifest, which is itself verified first
 * (formats/bundle/read-bundle.ts); stored by bundling the bytes as they arrive — no temporary copy — into the
 * configured bucket and registering the manifest. EBS-backed images are snapshots the EC2 API cannot read out:
 * they are listed, shared and deleted, and a download names why it cannot be.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type {
  CreateImageFromInstanceRequest,
  DownloadOptions,
  ImageProvider,
  ProviderCapabilities,
  ProviderImage,
  UploadImageRequest,
  UploadOptions,
} from "../provider.js";
import { ChromogenicError, UsageError, VerificationError } from "../../util/errors.js";
import type { Ec2CloudConfig } from "../ec2/ec2-cloud-config.js";
import { Ec2Connection } from "../ec2/ec2-connection.js";
import { S3Connection } from "../ec2/s3-connection.js";
import { S3BundleStore } from "../ec2/s3-bundle-store.js";
import { describeImages, deregisterImage, EC2_IMAGE_ID, findImage, registerImage } from "../ec2/ec2-images.js";
import { waitForImage } from "../ec2/ec2-image-wait.js";
import { describeInstance } from "../ec2/ec2-instances.js";
import { modifyLaunchPermissions } from "../ec2/ec2-launch-permissions.js";
import type { Ec2Image } from "../ec2/ec2-records.js";
import { writeBundle } from "../../formats/bundle/write-bundle.js";
import { bundleSecretFromHex, randomBundleSecret, type BundleSecret } from "../../formats/bundle/bundle-keys.js";
import { streamImageSource } from "../../formats/bundle/stream-image-source.js";
import { bundleManifestName, type BundleImageType } from "../../formats/bundle/bundle-manifest.js";
import { BundleImages, isBundleImage } from "../ec2/bundle-images.js";
import { BUNDLE_DISK_FORMAT, EBS_UNREADABLE, providerImageOf } from "./eucalyptus-image.js";
import { bundleReadingKeys, bundleWritingKeys } from "./bundle-signing-keys.js";
import type { EucalyptusSettings } from "./eucalyptus-settings.js";
import { imageFromInstance } from "./instance-image.js";
import { architectureFor } from "../ec2/ec2-architecture.js";

/** What a resumed upload needs of the one it continues (kept by the job as UploadOptions.resume state). */
const BundleResumeSchema = z.object({
  bucket: z.string(),
  prefix: z.string().regex(/^[A-Za-z0-9._-]{1,80}$/),
  size: z.number(),
  key: z.string().regex(/^[0-9a-f]{32}$/),
  iv: z.string().regex(/^[0-9a-f]{32}$/),
});
type BundleResume = z.infer<typeof BundleResumeSchema>;

export class EucalyptusProvider implements ImageProvider {
  readonly label: string;
  readonly ec2: Ec2Connection;
  /** Its bundles, read and removed as AWS's instance-store AMIs are (ec2/bundle-images.ts). */
  readonly bundles: BundleImages;
  private s3Connection: S3Connection | undefined;

  constructor(
    readonly config: Ec2CloudConfig,
    readonly settings: EucalyptusSettings,
  ) {
    this.label = `${config.kind}:${config.name}`;
    this.ec2 = new Ec2Connection(config);
    this.bundles = new BundleImages({
      label: this.label,
      s3: () => this.s3,
      readingKeys: () => bundleReadingKeys(this.config, this.settings.cloudKey),
      explainRefusal: (e) =>
        // The commonest cause in a real cloud, said where the user meets it.
        new VerificationError(
          `${e.message}; a bundle the cloud made itself (BundleInstance) is signed by a node controller and ` +
            "opens only with the cloud's private key" +
            (this.settings.cloudKey
              ? ": give the node controllers' certificate (node-cert.pem) with --bundle-signer-cert"
              : ": an administrator can give it with --cloud-private-key and --bundle-signer-cert"),
        ),
    });
  }

  /** The S3 connection, made when first needed (listing images needs none). */
  get s3(): S3Connection {
    this.s3Connection ??= S3Connection.forCloud(this.config, {
      ...(this.settings.cannedAcl ? { cannedAcl: this.settings.cannedAcl } : {}),
    });
    return this.s3Connection;
  }

  async capabilities(): Promise<ProviderCapabilities> {
    return {
      diskFormats: [BUNDLE_DISK_FORMAT],
      canCreateImageFromInstance: true,
      resumableDownload: false,
      sharing: true,
      randomAccess: false,
      externalKernels: true,
    };
  }

  async *listImages(): AsyncIterable<ProviderImage> {
    for (const image of await describeImages(this.ec2, { owners: ["self"] })) yield providerImageOf(image);
  }

  async getImage(idOrName: string): Promise<ProviderImage | undefined> {
    const image = await this.findImage(idOrName);
    if (!image) return undefined;
    // A bundle whose manifest cannot be read (removed, or not in a bucket) leaves the size unknown: the image is
    // still there to show and to delete, and a download names what is wrong with it.
    const sizes = isBundleImage(image) ? await this.bundles.sizes(image).catch(() => undefined) : undefined;
    return providerImageOf(image, sizes);
  }

  /** By id, else by a name that exactly one of the user's images has. */
  private findImage(idOrName: string, signal?: AbortSignal): Promise<Ec2Image | undefined> {
    return findImage(this.ec2, idOrName, this.label, signal);
  }

  async *downloadImage(id: string, options: DownloadOptions = {}): AsyncIterable<Uint8Array> {
    const image = await this.findImage(id, options.signal);
    if (!image) throw new UsageError(`${this.label}: no image "${id}"`);
    if (!isBundleImage(image)) {
      throw new UsageError(`${this.label}: ${image.id} ${EBS_UNREADABLE}`);
    }
    yield* this.bundles.read(image, options);
  }

  async uploadImage(
    request: UploadImageRequest,
    data: AsyncIterable<Uint8Array>,
    options: UploadOptions = {},
  ): Promise<ProviderImage> {
    if (request.diskFormat !== BUNDLE_DISK_FORMAT) {
      throw new UsageError(`${this.label} stores raw disks (bundles), not ${request.diskFormat}`);
    }
    if (request.sizeBytes === undefined)
      throw new UsageError(`${this.label}: a bundle needs the image's size up front`);
    const keys = await bundleWritingKeys(this.config);
    const properties = request.properties ?? {};
    const imageType = bundleImageType(properties.image_type);
    const store = new S3BundleStore(this.s3, this.settings.bucket);
    const { prefix, secret } = await this.bundleIdentity(request, options);
    const source = streamImageSource(data, request.sizeBytes, `the data of "${request.name}"`);
    const architecture = architectureFor(properties, request.guest?.architecture);
    const boot = bootImagesOf(imageType, properties);
    const writing = writeBundle({
      source,
      prefix,
      store,
      secret,
      // With a place to keep the prefix and key, a run that stops leaves its parts for the next to skip.
      resumable: !!options.resume,
      architecture,
      user: this.config.userId ?? "000000000000",
      imageType,
      // Eucalyptus (and ec2-api) tell a kernel or ramdisk bundle by "true" in its own field.
      ...(imageType === "kernel" ? { kernelId: "true" } : {}),
      ...(imageType === "ramdisk" ? { ramdiskId: "true" } : {}),
      ...boot,
      ...keys,
      signal: options.signal,
      onProgress: (e) => {
        if (e.event === "progress") options.onProgress?.(e.bytes, request.sizeBytes);
      },
    }).finally(() => source.close());
    const written = await writing.catch(async (e: unknown) => {
      // Interrupted (Ctrl-C, kept for a resume) or --keep: the parts stay. Failed: nothing is left.
      if (options.resume && !options.signal?.aborted && !options.keepOnFailure) {
        await this.bundles.deleteBundle(
          store,
          bundleManifestName(prefix),
          await this.bundles.storedParts(store, prefix),
        );
      }
      throw e;
    });
    const location = `${this.settings.bucket}/${written.manifestName}`;
    let imageId: string | undefined;
    try {
      imageId = await registerImage(this.ec2, {
        manifestLocation: location,
        name: request.name,
        architecture,
        ...boot,
        signal: options.signal,
      });
      await options.onCreated?.(imageId);
      if (request.visibility === "public") await this.setPublic(imageId, options.signal);
      await waitForImage(this.ec2, imageId, { signal: options.signal });
    } catch (e) {
      if (options.keepOnFailure) throw e;
      if (imageId) await deregisterImage(this.ec2, imageId).catch(() => undefined);
      await this.bundles.deleteBundle(
        store,
        written.manifestName,
        written.parts.map((p) => p.filename),
      );
      throw e;
    }
    return await this.madeImage(imageId);
  }

  /** An image this store has just made, which must now be there. */
  async madeImage(id: string): Promise<ProviderImage> {
    const image = await this.getImage(id);
    if (!image) throw new ChromogenicError(`${this.label}: image ${id} vanished after it was made`, "ECLOUD");
    return image;
  }

  /**
   * The new bundle's prefix and AES key: an interrupted upload's, saved by the job, when it is resumed (the
   * parts it stored are then the same bytes, and are not sent again); otherwise new ones, saved before any part
   * is made.
   */
  private async bundleIdentity(
    request: UploadImageRequest,
    options: UploadOptions,
  ): Promise<{ prefix: string; secret: BundleSecret }> {
    const earlier = BundleResumeSchema.safeParse(options.resume?.state);
    if (earlier.success && earlier.data.bucket === this.settings.bucket && earlier.data.size === request.sizeBytes) {
      const { prefix, key, iv } = earlier.data;
      return { prefix, secret: bundleSecretFromHex(key, iv) };
    }
    const prefix = `${bundlePrefix(request.name)}-${randomBytes(4).toString("hex")}`;
    const secret = randomBundleSecret();
    const state: BundleResume = { bucket: this.settings.bucket, prefix, size: request.sizeBytes!, ...secret };
    await options.resume?.save(state);
    return { prefix, secret };
  }

  /** Lets anyone launch the image (launch permission of the group "all"). */
  async setPublic(imageId: string, signal?: AbortSignal): Promise<void> {
    await modifyLaunchPermissions(this.ec2, imageId, { add: { all: true } }, signal);
  }

  async shareImage(id: string, member: string): Promise<void> {
    await modifyLaunchPermissions(this.ec2, id, { add: { userIds: [member] } });
  }

  /** Deregisters the image and removes its bundle (manifest last, so a bundle with a manifest stays whole). */
  async deleteImage(id: string): Promise<void> {
    const image = await this.findImage(id);
    if (!image) return;
    await deregisterImage(this.ec2, image.id);
    if (isBundleImage(image)) await this.bundles.remove(image);
  }

  /**
   * Whether an image of the instance can be read here. An EBS-backed instance's image is a snapshot, which the
   * EC2 API gives no way to read. An instance-store instance bundled by the cloud (BundleInstance, no node copy
   * configured) cannot be read either: the node controller signs that bundle with its own key and wraps its key
   * for the cloud's certificate only (Eucalyptus 4.4 node/handlers_default.c, euca-run-workflow read-raw/up-bundle
   * with --cert and --ec2cert the cloud's), so the user's key cannot open it — unless an administrator gave the
   * cloud's key. The unreadable ones are made in the cloud.
   */
  async instanceImageReadable(instance: string, signal?: AbortSignal): Promise<boolean> {
    const found = await describeInstance(this.ec2, instance, signal);
    return found.rootDeviceType !== "ebs" && (!!this.settings.nodeCopy || !!this.settings.cloudKey);
  }

  createImageFromInstance(request: CreateImageFromInstanceRequest): Promise<ProviderImage> {
    return imageFromInstance(this, request);
  }

  /** Registers a bundle already in the bucket (BundleInstance's), waits until it is ready; its id. */
  async registerBundle(
    location: string,
    name: string,
    from: { architecture?: string; kernelId?: string; ramdiskId?: string },
    signal?: AbortSignal,
  ): Promise<string> {
    const id = await registerImage(this.ec2, { manifestLocation: location, name, ...from, signal });
    await waitForImage(this.ec2, id, { signal });
    return id;
  }
}

/** A name as a bundle prefix: what euca2ools and S3 keys take (letters, digits, . _ -), at most 64 characters. */
function bundlePrefix(name: string): string {
  const safe = name
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[-.]+/, "")
    .slice(0, 64);
  return safe || "image";
}

/** The kernel and ramdisk a machine image boots with, when its properties name EC2 images of those kinds. */
function bootImagesOf(
  imageType: BundleImageType,
  properties: Readonly<Record<string, string>>,
): { kernelId?: string; ramdiskId?: string } {
  if (imageType !== "machine") return {};
  const kernelId = ec2Id(properties.kernel_id, "eki", "aki");
  const ramdiskId = ec2Id(properties.ramdisk_id, "eri", "ari");
  return { ...(kernelId ? { kernelId } : {}), ...(ramdiskId ? { ramdiskId } : {}) };
}

function bundleImageType(value: string | undefined): BundleImageType {
  if (value === "kernel" || value === "ramdisk") return value;
  return "machine";
}

/** An EC2 image id of one of the kinds given (a kernel_id from OpenStack is a Glance UUID: not carried over). */
function ec2Id(value: string | undefined, ...kinds: string[]): string | undefined {
  return value && EC2_IMAGE_ID.test(value) && kinds.includes(value.slice(0, 3).toLowerCase()) ? value : undefined;
}
