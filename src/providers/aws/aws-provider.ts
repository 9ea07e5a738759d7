/**
 * `ImageProvider` for AWS: EC2 for the image records (DescribeImages, RegisterImage, DeregisterImage, CreateImage,
 * launch permissions), the EBS direct APIs for the bytes of EBS-backed AMIs — read block by block (only the
 * blocks the snapshot holds, each checked against its SHA-256) as an input the format engine converts in one
 * pass, written block by block (only non-zero blocks) into a new snapshot that RegisterImage then names as the
 * root device. No S3 bucket and no export or import task is needed on this path.
 *
 * The alternatives a user may choose (aws-settings.ts): --aws-read-via export reads an AMI through ExportImage
 * and the exported object in S3 (ami-export-read.ts); --aws-write-via import makes an AMI with VM Import's
 * ImportImage from an object uploaded to S3 (ami-import-write.ts).
 *
 * An instance-store AMI's data is the raw disk its S3 bundle holds: read as Eucalyptus reads its bundles
 * (ec2/bundle-images.ts), with the key it was bundled for (aws-bundle-keys.ts), as a stream only.
 *
 * An image's data is its root volume as a raw disk; the boot mode an AMI is registered with comes from the
 * disk itself (guest/inspect/firmware-support.ts, through UploadImageRequest.guest), else from the source's
 * `hw_firmware_type`.
 */
import type {
  CreateImageFromInstanceRequest,
  DownloadOptions,
  ImageProvider,
  OpenImageInputOptions,
  ProviderCapabilities,
  ProviderImage,
  UploadImageRequest,
  UploadOptions,
} from "../provider.js";
import type { ImageInput } from "../../formats/inputs/image-input.js";
import { ChromogenicError, UsageError } from "../../util/errors.js";
import type { AwsCloudConfig } from "./aws-cloud-config.js";
import { Ec2Connection } from "../ec2/ec2-connection.js";
import { S3Connection } from "../ec2/s3-connection.js";
import { BundleImages, isBundleImage } from "../ec2/bundle-images.js";
import { awsBundleReadingKeys, explainAwsBundleRefusal } from "./aws-bundle-keys.js";
import { createImage, describeImages, deregisterImage, findImage, registerImage } from "../ec2/ec2-images.js";
import { waitForImage } from "../ec2/ec2-image-wait.js";
import { describeInstance } from "../ec2/ec2-instances.js";
import { modifyLaunchPermissions } from "../ec2/ec2-launch-permissions.js";
import type { Ec2Image, Ec2Instance } from "../ec2/ec2-records.js";
import { volumesSizeGiB } from "../ec2/ec2-volumes.js";
import { deleteSnapshot } from "../ec2/ec2-snapshots.js";
import { waitBoundMs } from "../ec2/ec2-wait-bounds.js";
import { checkAmiReadable } from "./ami-read-check.js";
import { EbsConnection } from "./ebs-connection.js";
import { openSnapshotInput } from "./ebs-snapshot-input.js";
import { writeSnapshot } from "./ebs-snapshot-writer.js";
import { awsProviderImage, bootModeFor, enaSupportFor, rootSnapshotOf, SNAPSHOT_DISK_FORMAT } from "./aws-image.js";
import { architectureFor } from "../ec2/ec2-architecture.js";
import type { AwsSettings } from "./aws-settings.js";
import { openExportedAmi } from "./ami-export-read.js";
import { importAmi, parseUploadLocation } from "./ami-import-write.js";
import { deleteObject } from "../ec2/s3-objects.js";

const GIB = 1024 ** 3;
const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;
/** The root device name AWS's own HVM images use (Amazon Linux, Debian); the guest finds its root by label or UUID. */
const ROOT_DEVICE = "/dev/xvda";
/** Reading a disk sequentially for a download: 4 MiB at a time, the engine's own piece size. */
const DOWNLOAD_PIECE = 4 * 2 ** 20;

export class AwsProvider implements ImageProvider {
  readonly label: string;
  readonly ec2: Ec2Connection;
  readonly ebs: EbsConnection;
  /** Instance-store AMIs' bundles, through AWS's S3 with the cloud's credentials (made when first needed). */
  readonly bundles: BundleImages;
  private s3Connection: S3Connection | undefined;

  constructor(
    readonly config: AwsCloudConfig,
    readonly settings: AwsSettings,
  ) {
    this.label = `aws:${config.name}`;
    this.ec2 = Ec2Connection.forAws(config);
    this.ebs = EbsConnection.forAws(config);
    this.bundles = new BundleImages({
      label: this.label,
      s3: () => this.s3,
      readingKeys: () => awsBundleReadingKeys(this.settings, this.label),
      explainRefusal: (e) => explainAwsBundleRefusal(e, this.settings),
    });
  }

  /** S3, for bundles and the export and import paths (the EBS direct paths need no bucket); made when first needed. */
  get s3(): S3Connection {
    this.s3Connection ??= S3Connection.forAws(this.config);
    return this.s3Connection;
  }

  async capabilities(): Promise<ProviderCapabilities> {
    return {
      diskFormats: [SNAPSHOT_DISK_FORMAT],
      canCreateImageFromInstance: true,
      resumableDownload: true,
      sharing: true,
      randomAccess: true,
    };
  }

  async *listImages(): AsyncIterable<ProviderImage> {
    for (const image of await describeImages(this.ec2, { owners: ["self"] })) yield awsProviderImage(image);
  }

  async getImage(idOrName: string): Promise<ProviderImage | undefined> {
    const image = await this.findImage(idOrName);
    if (!image) return undefined;
    // A bundle whose manifest cannot be read leaves the size unknown: the AMI is still shown and deletable.
    const sizes = isBundleImage(image) ? await this.bundles.sizes(image).catch(() => undefined) : undefined;
    return awsProviderImage(image, sizes);
  }

  private findImage(idOrName: string, signal?: AbortSignal): Promise<Ec2Image | undefined> {
    return findImage(this.ec2, idOrName, this.label, signal);
  }

  private async requireImage(id: string, signal?: AbortSignal): Promise<Ec2Image> {
    const image = await this.findImage(id, signal);
    if (!image) throw new ChromogenicError(`${this.label}: no image "${id}"`, "ENOENT");
    return image;
  }

  async openImageInput(id: string, options: OpenImageInputOptions = {}): Promise<ImageInput> {
    return this.openDiskInput(await this.requireImage(id, options.signal), options);
  }

  /** An EBS-backed AMI's root disk as the settings say to read it: its snapshot's blocks, or its export in S3. */
  private openDiskInput(image: Ec2Image, options: OpenImageInputOptions): Promise<ImageInput> {
    if (this.settings.readVia === "export") return openExportedAmi(this, image, options);
    return this.openSnapshotInput(image, options.signal);
  }

  /** The root snapshot of an EBS-backed AMI, read block by block. */
  private openSnapshotInput(image: Ec2Image, signal?: AbortSignal): Promise<ImageInput> {
    checkAmiReadable(image, { path: "ebs-direct" });
    const snapshot = rootSnapshotOf(image, this.label);
    return openSnapshotInput(this.ebs, snapshot.snapshotId, {
      signal,
      label: `${this.label}/${image.id}`,
      ...(this.settings.concurrency ? { concurrency: this.settings.concurrency } : {}),
    });
  }

  async *downloadImage(id: string, options: DownloadOptions = {}): AsyncIterable<Uint8Array> {
    const image = await this.requireImage(id, options.signal);
    if (isBundleImage(image)) {
      yield* this.bundles.read(image, options);
      return;
    }
    const input = await this.openDiskInput(image, options.signal ? { signal: options.signal } : {});
    try {
      let position = options.offset ?? 0;
      while (position < input.size) {
        const length = Math.min(DOWNLOAD_PIECE, input.size - position);
        const piece = await input.readExact(position, length);
        position += length;
        options.onProgress?.(position, input.size);
        yield piece;
      }
    } finally {
      await input.close();
    }
  }

  async uploadImage(
    request: UploadImageRequest,
    data: AsyncIterable<Uint8Array>,
    options: UploadOptions = {},
  ): Promise<ProviderImage> {
    if (request.diskFormat !== SNAPSHOT_DISK_FORMAT) {
      throw new UsageError(`${this.label} stores raw disks (an EBS snapshot), not ${request.diskFormat}`);
    }
    if (request.sizeBytes === undefined) {
      throw new UsageError(`${this.label}: the disk's size must be known before its snapshot is started`);
    }
    const volumeSizeGiB = Math.max(1, Math.ceil(request.sizeBytes / GIB));
    if (this.settings.writeVia === "import") {
      const imageId = await importAmi(this, { ...request, sizeBytes: request.sizeBytes }, data, options, {
        rootVolumeSizeGiB: volumeSizeGiB,
        enaSupport: enaSupportFor(request),
      });
      try {
        return await this.finishUpload(imageId, request, volumeSizeGiB, options);
      } catch (e) {
        if (!options.keepOnFailure) await this.deleteImage(imageId).catch(() => undefined);
        throw e;
      }
    }
    const bootMode = bootModeFor(request);
    let snapshotId: string | undefined;
    let imageId: string | undefined;
    try {
      const written = await writeSnapshot(this.ebs, data, {
        volumeSizeGiB,
        description: `chromogenic: ${request.name}`,
        tags: { Name: request.name, ...pick(request.properties, "chromogenic_job") },
        signal: options.signal,
        onProgress: options.onProgress,
        onStarted: async (id) => {
          snapshotId = id;
          // Recorded before any byte moves: a crash leaves an id the job deletes, never an unknown snapshot.
          await options.onCreated?.(id);
        },
        ...(options.resume ? { resume: options.resume } : {}),
        ...(this.settings.concurrency ? { concurrency: this.settings.concurrency } : {}),
      });
      snapshotId = written.snapshotId;
      imageId = await registerImage(this.ec2, {
        name: request.name,
        description: request.properties?.description ?? `made by chromogenic`,
        snapshotId,
        rootDeviceName: ROOT_DEVICE,
        architecture: architectureFor(request.properties, request.guest?.architecture),
        virtualizationType: "hvm",
        rootVolumeSizeGiB: volumeSizeGiB,
        rootVolumeType: "gp3",
        ...(bootMode ? { bootMode } : {}),
        enaSupport: enaSupportFor(request),
        signal: options.signal,
      });
      await options.onCreated?.(imageId);
      return await this.finishUpload(imageId, request, volumeSizeGiB, options);
    } catch (e) {
      if (!options.keepOnFailure) {
        if (imageId) await deregisterImage(this.ec2, imageId).catch(() => undefined);
        if (snapshotId) await deleteSnapshot(this.ec2, snapshotId).catch(() => undefined);
      }
      throw e;
    }
  }

  /** A new AMI published as asked and waited for until it is available. */
  private async finishUpload(
    imageId: string,
    request: UploadImageRequest,
    volumeSizeGiB: number,
    options: UploadOptions,
  ): Promise<ProviderImage> {
    if (request.visibility === "public") {
      await modifyLaunchPermissions(this.ec2, imageId, { add: { all: true } }, options.signal);
    }
    const image = await waitForImage(this.ec2, imageId, {
      signal: options.signal,
      timeoutMs: waitBoundMs("image", volumeSizeGiB),
    });
    return awsProviderImage(image);
  }

  async shareImage(id: string, member: string): Promise<void> {
    await modifyLaunchPermissions(this.ec2, id, { add: { userIds: [member] } });
  }

  /**
   * An AMI and the snapshots or the S3 bundle it holds (they would otherwise be left, and billed); a snapshot id
   * alone is deleted, and so is an upload for VM Import that a job recorded (s3://bucket/chromogenic-imports/…).
   */
  async deleteImage(id: string): Promise<void> {
    const upload = parseUploadLocation(id);
    if (upload) {
      await deleteObject(this.s3, upload.bucket, upload.key);
      return;
    }
    if (SNAPSHOT_ID.test(id)) {
      await deleteSnapshot(this.ec2, id);
      return;
    }
    const image = await this.findImage(id);
    if (!image) return;
    await deregisterImage(this.ec2, image.id);
    if (isBundleImage(image)) await this.bundles.remove(image);
    for (const m of image.blockDeviceMappings) {
      if (m.snapshotId) await deleteSnapshot(this.ec2, m.snapshotId);
    }
  }

  async instanceImageReadable(instance: string, signal?: AbortSignal): Promise<boolean> {
    return (await describeInstance(this.ec2, instance, signal)).rootDeviceType === "ebs";
  }

  async createImageFromInstance(request: CreateImageFromInstanceRequest): Promise<ProviderImage> {
    const instance = await describeInstance(this.ec2, request.instance, request.signal);
    if (instance.rootDeviceType !== "ebs") {
      throw new UsageError(
        `${this.label}: instance ${instance.id} is instance-store backed: AWS makes images of those only from ` +
          "inside the instance (ec2-bundle-vol), which chromogenic does not do",
      );
    }
    const sizeGiB = await instanceDiskGiB(this.ec2, instance, request.signal);
    const imageId = await createImage(this.ec2, instance.id, request.imageName, {
      noReboot: this.settings.noReboot,
      signal: request.signal,
    });
    try {
      const image = await waitForImage(this.ec2, imageId, {
        signal: request.signal,
        timeoutMs: request.timeoutMs ?? waitBoundMs("image", sizeGiB),
      });
      return awsProviderImage(image);
    } catch (e) {
      await this.deleteImage(imageId).catch(() => undefined);
      throw e;
    }
  }
}

/** The instance's volumes' total size, what CreateImage's wait is scaled by. */
async function instanceDiskGiB(ec2: Ec2Connection, instance: Ec2Instance, signal?: AbortSignal): Promise<number> {
  const ids = instance.volumes.map((v) => v.volumeId).filter((v): v is string => !!v);
  return volumesSizeGiB(ec2, ids, signal);
}

function pick(properties: Readonly<Record<string, string>> | undefined, key: string): Record<string, string> {
  const value = properties?.[key];
  return value ? { [key]: value } : {};
}
