/**
 * The EC2 image calls: DescribeImages, RegisterImage (an instance-store bundle by its manifest, or an
 * EBS-backed image from a snapshot), DeregisterImage and CreateImage (an image of an EBS-backed instance).
 * Launch permissions are in ec2-launch-permissions.ts, waiting for an image in ec2-image-wait.ts.
 */
import {
  CreateImageCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  RegisterImageCommand,
  type CreateImageCommandOutput,
  type DescribeImagesCommandOutput,
  type RegisterImageCommandOutput,
} from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "./ec2-connection.js";
import { imageRecord, sdkBlockDeviceMapping, type Ec2BlockDeviceMapping, type Ec2Image } from "./ec2-records.js";
import { DEFAULT_MAX_PAGES, PageGuard } from "./s3-listing.js";
import { ChromogenicError, UsageError } from "../../util/errors.js";

export interface DescribeImagesQuery {
  readonly imageIds?: readonly string[];
  /** Account ids, or "self", "amazon" … */
  readonly owners?: readonly string[];
  /** Images these accounts may launch ("self", "all", an account id). */
  readonly executableBy?: readonly string[];
  /** EC2 filters, e.g. { "image-type": ["kernel"], name: ["debian-*"] }. */
  readonly filters?: Readonly<Record<string, readonly string[]>>;
  readonly signal?: AbortSignal;
}

export async function describeImages(ec2: Ec2Connection, query: DescribeImagesQuery = {}): Promise<Ec2Image[]> {
  const subject = query.imageIds?.length ? query.imageIds.join(", ") : undefined;
  const where = `EC2 at ${ec2.endpoint}: DescribeImages`;
  const guard = new PageGuard(where, DEFAULT_MAX_PAGES);
  const images: Ec2Image[] = [];
  let token: string | undefined;
  for (;;) {
    const out = await ec2.send<DescribeImagesCommandOutput>(
      new DescribeImagesCommand({
        ...(query.imageIds?.length ? { ImageIds: [...query.imageIds] } : {}),
        ...(query.owners?.length ? { Owners: [...query.owners] } : {}),
        ...(query.executableBy?.length ? { ExecutableUsers: [...query.executableBy] } : {}),
        ...(query.filters
          ? { Filters: Object.entries(query.filters).map(([Name, Values]) => ({ Name, Values: [...Values] })) }
          : {}),
        NextToken: token,
      }),
      { call: "DescribeImages", subject },
      query.signal,
    );
    // Pages of images come in no key order: only the token is checked to move on.
    guard.page([]);
    images.push(...(out.Images ?? []).map((i) => imageRecord(i, where)));
    if (!out.NextToken) return images;
    token = guard.next(out.NextToken);
  }
}

/** EC2 ids of images: machine, kernel and ramdisk images of Eucalyptus (emi, eki, eri) and of AWS (ami, aki, ari). */
export const EC2_IMAGE_ID = /^[ae][mkr]i-[0-9a-f]{8,17}$/i;

/**
 * An image by id, else by a name exactly one of the user's images has (`label` names the store in the error
 * for a name several images share); undefined when there is none. Deregistered images are not found.
 */
export async function findImage(
  ec2: Ec2Connection,
  idOrName: string,
  label: string,
  signal?: AbortSignal,
): Promise<Ec2Image | undefined> {
  if (EC2_IMAGE_ID.test(idOrName)) {
    const found = await describeImages(ec2, { imageIds: [idOrName], signal }).catch((e: unknown) => {
      if (e instanceof ChromogenicError && /InvalidAMIID|NotFound/i.test(e.message)) return [];
      throw e;
    });
    return found.find((i) => i.id === idOrName && i.state !== "deregistered");
  }
  const named = (await describeImages(ec2, { owners: ["self"], filters: { name: [idOrName] }, signal })).filter(
    (i) => i.name === idOrName && i.state !== "deregistered",
  );
  if (named.length > 1) {
    throw new UsageError(
      `${label}: ${named.length} images are named "${idOrName}" (${named.map((i) => i.id).join(", ")}): give an id`,
    );
  }
  return named[0];
}

/** One image by id; a missing one is an ENOENT error naming it. */
export async function describeImage(ec2: Ec2Connection, imageId: string, signal?: AbortSignal): Promise<Ec2Image> {
  const [image] = await describeImages(ec2, { imageIds: [imageId], signal });
  if (!image || image.id !== imageId) {
    throw new ChromogenicError(`EC2 at ${ec2.endpoint} has no image ${imageId}`, "ENOENT");
  }
  return image;
}

interface RegisterImageCommon {
  readonly name: string;
  readonly description?: string;
  /** "i386", "x86_64", "arm64". */
  readonly architecture?: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly blockDeviceMappings?: readonly Ec2BlockDeviceMapping[];
  /** "paravirtual" or "hvm". */
  readonly virtualizationType?: string;
  readonly signal?: AbortSignal;
}

/** An instance-store image from a bundle in S3: its manifest as "bucket/prefix.manifest.xml". */
export interface RegisterBundleImage extends RegisterImageCommon {
  readonly manifestLocation: string;
  readonly rootDeviceName?: string;
}

/** The firmware an image's instances boot with (AWS): "uefi-preferred" boots UEFI where the instance type can. */
export type Ec2BootMode = "legacy-bios" | "uefi" | "uefi-preferred";

/** The architectures AWS registers images for. */
export type Ec2Architecture = "i386" | "x86_64" | "arm64";

/**
 * An EBS-backed image whose root device is made from a snapshot. The fields after rootDeviceName are AWS's
 * (what the guest needs: its firmware, the ENA network driver, IMDSv2); each is sent only when set, so a
 * request to Eucalyptus or ec2-api that leaves them out is the one it always was.
 */
export interface RegisterSnapshotImage extends RegisterImageCommon {
  readonly snapshotId: string;
  readonly rootDeviceName: string;
  readonly architecture?: Ec2Architecture;
  /** The root volume's size; at least the snapshot's (default: the snapshot's). */
  readonly rootVolumeSizeGiB?: number;
  /** "gp3" for AWS; default the cloud's own. */
  readonly rootVolumeType?: string;
  /** Whether the root volume goes with an instance that ends (default true). */
  readonly deleteOnTermination?: boolean;
  readonly bootMode?: Ec2BootMode;
  /** The guest has the ENA driver: needed by current instance types. */
  readonly enaSupport?: boolean;
  /** Instances of the image must use IMDSv2. */
  readonly imdsV2Only?: boolean;
}

/** Registers an image and returns its new id. */
export async function registerImage(
  ec2: Ec2Connection,
  spec: RegisterBundleImage | RegisterSnapshotImage,
): Promise<string> {
  const mappings = [...(spec.blockDeviceMappings ?? [])];
  let location: { ImageLocation?: string } = {};
  let subject: string;
  if ("manifestLocation" in spec) {
    if (!/^[^/]+\/.+\.manifest\.xml$/.test(spec.manifestLocation)) {
      throw new UsageError(
        `"${spec.manifestLocation}" is not a bundle manifest location: BUCKET/PREFIX.manifest.xml, as uploaded`,
      );
    }
    location = { ImageLocation: spec.manifestLocation };
    subject = `of ${spec.manifestLocation} as "${spec.name}"`;
  } else {
    if (!mappings.some((m) => m.deviceName === spec.rootDeviceName)) {
      mappings.unshift({
        deviceName: spec.rootDeviceName,
        snapshotId: spec.snapshotId,
        ...(spec.rootVolumeSizeGiB !== undefined ? { volumeSizeGiB: spec.rootVolumeSizeGiB } : {}),
        deleteOnTermination: spec.deleteOnTermination ?? true,
        ...(spec.rootVolumeType ? { volumeType: spec.rootVolumeType } : {}),
      });
    }
    subject = `of snapshot ${spec.snapshotId} as "${spec.name}"`;
  }
  const aws = "manifestLocation" in spec ? {} : awsImageFields(spec);
  const out = await ec2.send<RegisterImageCommandOutput>(
    new RegisterImageCommand({
      Name: spec.name,
      ...location,
      ...(spec.description ? { Description: spec.description } : {}),
      ...(spec.architecture ? { Architecture: spec.architecture as never } : {}),
      ...(spec.kernelId ? { KernelId: spec.kernelId } : {}),
      ...(spec.ramdiskId ? { RamdiskId: spec.ramdiskId } : {}),
      ...(spec.rootDeviceName ? { RootDeviceName: spec.rootDeviceName } : {}),
      ...(spec.virtualizationType ? { VirtualizationType: spec.virtualizationType } : {}),
      ...(mappings.length ? { BlockDeviceMappings: mappings.map(sdkBlockDeviceMapping) } : {}),
      ...aws,
    }),
    { call: "RegisterImage", subject },
    spec.signal,
  );
  return requireId(ec2, out.ImageId, "RegisterImage");
}

/** RegisterImage's AWS-only fields, each present only when asked for. */
function awsImageFields(spec: RegisterSnapshotImage) {
  return {
    ...(spec.bootMode ? { BootMode: spec.bootMode } : {}),
    ...(spec.enaSupport !== undefined ? { EnaSupport: spec.enaSupport } : {}),
    ...(spec.imdsV2Only ? { ImdsSupport: "v2.0" as const } : {}),
  };
}

export async function deregisterImage(ec2: Ec2Connection, imageId: string, signal?: AbortSignal): Promise<void> {
  await ec2.send(
    new DeregisterImageCommand({ ImageId: imageId }),
    { call: "DeregisterImage", subject: imageId },
    signal,
  );
}

export interface CreateImageOptions {
  readonly description?: string;
  /** Do not stop the instance while its volumes are snapshotted (the image may then be inconsistent). */
  readonly noReboot?: boolean;
  readonly blockDeviceMappings?: readonly Ec2BlockDeviceMapping[];
  readonly signal?: AbortSignal;
}

/** An image of an EBS-backed instance (CreateImage); returns its id. The image is pending until its snapshots end. */
export async function createImage(
  ec2: Ec2Connection,
  instanceId: string,
  name: string,
  options: CreateImageOptions = {},
): Promise<string> {
  const out = await ec2.send<CreateImageCommandOutput>(
    new CreateImageCommand({
      InstanceId: instanceId,
      Name: name,
      ...(options.description ? { Description: options.description } : {}),
      ...(options.noReboot !== undefined ? { NoReboot: options.noReboot } : {}),
      ...(options.blockDeviceMappings?.length
        ? { BlockDeviceMappings: options.blockDeviceMappings.map(sdkBlockDeviceMapping) }
        : {}),
    }),
    { call: "CreateImage", subject: `of instance ${instanceId} as "${name}"` },
    options.signal,
  );
  return requireId(ec2, out.ImageId, "CreateImage");
}

function requireId(ec2: Ec2Connection, id: string | undefined, call: string): string {
  if (!id) throw new ChromogenicError(`EC2 at ${ec2.endpoint}: ${call} answered without an image id`, "ECLOUD");
  return id;
}
