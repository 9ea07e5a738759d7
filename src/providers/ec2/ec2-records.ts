/**
 * The EC2 records chromogenic works with — an image (EMI/EKI/ERI, AMI) and an instance — taken from the SDK's
 * parsed replies through zod schemas. The SDK types every field as optional, and the servers in this family
 * (Eucalyptus, ec2-api) leave out what AWS always sends; the schemas say which fields a record cannot do without
 * (an id) and check the words the code branches on, so a reply that lacks them is an error naming the call
 * instead of an `undefined` deep inside a workflow.
 */
import type { VolumeType } from "@aws-sdk/client-ec2";
import { z } from "zod";
import { ChromogenicError } from "../../util/errors.js";

/** A block device of an image or one asked for at registration; field names in our own words. */
export interface Ec2BlockDeviceMapping {
  readonly deviceName: string;
  /** "ephemeral0", "swap", "ami", "root" … (instance-store images). */
  readonly virtualName?: string;
  readonly snapshotId?: string;
  readonly volumeSizeGiB?: number;
  readonly deleteOnTermination?: boolean;
  /** Suppresses a device the image would otherwise give. */
  readonly noDevice?: boolean;
  /** The EBS volume type ("gp3", "gp2", "io1", …); AWS only. */
  readonly volumeType?: string;
}

export interface Ec2Image {
  readonly id: string;
  readonly name?: string;
  readonly description?: string;
  /** "available", "pending", "failed", "deregistered", … as the server says it. */
  readonly state: string;
  /** Why a failed image failed, when the server says. */
  readonly stateReason?: string;
  /** An instance-store image's manifest, "bucket/prefix.manifest.xml". */
  readonly location?: string;
  readonly ownerId?: string;
  readonly public: boolean;
  readonly architecture?: string;
  /** "machine", "kernel" or "ramdisk". */
  readonly imageType?: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  /** "ebs" or "instance-store". */
  readonly rootDeviceType?: string;
  readonly rootDeviceName?: string;
  readonly virtualizationType?: string;
  readonly platform?: string;
  readonly creationDate?: string;
  readonly blockDeviceMappings: readonly Ec2BlockDeviceMapping[];
  /** AWS Marketplace and devpay product codes, absent when none: such an image is sold (ami-read-check.ts). */
  readonly productCodes?: readonly { readonly id: string; readonly type?: string }[];
  /** "legacy-bios", "uefi" or "uefi-preferred"; absent when the image leaves it to the instance type (AWS). */
  readonly bootMode?: string;
  readonly enaSupport?: boolean;
  /** "v2.0" when instances of the image must use IMDSv2. */
  readonly imdsSupport?: string;
}

export interface Ec2Instance {
  readonly id: string;
  readonly imageId?: string;
  /** "pending", "running", "stopped", … */
  readonly state?: string;
  /** "ebs" or "instance-store": how the instance's image can be made. */
  readonly rootDeviceType?: string;
  readonly rootDeviceName?: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly architecture?: string;
  readonly platform?: string;
  readonly availabilityZone?: string;
  readonly privateIpAddress?: string;
  readonly publicIpAddress?: string;
  /** The instance's volumes by device name (EBS-backed instances). */
  readonly volumes: readonly { readonly deviceName: string; readonly volumeId?: string }[];
}

const text = z.string().optional().nullable();

const sdkMapping = z.object({
  DeviceName: z.string().optional(),
  VirtualName: text,
  NoDevice: text,
  Ebs: z
    .object({
      SnapshotId: text,
      VolumeSize: z.number().optional().nullable(),
      DeleteOnTermination: z.boolean().optional().nullable(),
      VolumeId: text,
      VolumeType: text,
    })
    .optional()
    .nullable(),
});

const sdkImage = z.object({
  ImageId: z.string().min(1, "an image without an id"),
  Name: text,
  Description: text,
  State: text,
  StateReason: z.object({ Message: text }).optional().nullable(),
  ImageLocation: text,
  OwnerId: text,
  Public: z.boolean().optional().nullable(),
  Architecture: text,
  ImageType: text,
  KernelId: text,
  RamdiskId: text,
  RootDeviceType: text,
  RootDeviceName: text,
  VirtualizationType: text,
  Platform: text,
  CreationDate: text,
  BlockDeviceMappings: z.array(sdkMapping).optional().nullable(),
  ProductCodes: z
    .array(z.object({ ProductCodeId: text, ProductCodeType: text }))
    .optional()
    .nullable(),
  BootMode: text,
  EnaSupport: z.boolean().optional().nullable(),
  ImdsSupport: text,
});

const sdkInstance = z.object({
  InstanceId: z.string().min(1, "an instance without an id"),
  ImageId: text,
  State: z.object({ Name: text }).optional().nullable(),
  RootDeviceType: text,
  RootDeviceName: text,
  KernelId: text,
  RamdiskId: text,
  Architecture: text,
  Platform: text,
  Placement: z.object({ AvailabilityZone: text }).optional().nullable(),
  PrivateIpAddress: text,
  PublicIpAddress: text,
  BlockDeviceMappings: z
    .array(z.object({ DeviceName: z.string().optional(), Ebs: z.object({ VolumeId: text }).optional().nullable() }))
    .optional()
    .nullable(),
});

/** Drops the keys whose value is null or undefined, so records carry only what the server said. */
function defined<T extends Record<string, unknown>>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined && v !== null)) as T;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.length ? ` at ${issue.path.join(".")}` : "";
    throw new ChromogenicError(`${where}: the reply is not what EC2 sends${path}: ${issue?.message}`, "ECLOUD");
  }
  return result.data;
}

/** One item of DescribeImages' reply. `where` names the server and call for the error. */
export function imageRecord(value: unknown, where: string): Ec2Image {
  const i = parse(sdkImage, value, where);
  return defined({
    id: i.ImageId,
    name: i.Name,
    description: i.Description,
    state: i.State ?? "unknown",
    stateReason: i.StateReason?.Message,
    location: i.ImageLocation,
    ownerId: i.OwnerId,
    public: i.Public ?? false,
    architecture: i.Architecture,
    imageType: i.ImageType,
    kernelId: i.KernelId,
    ramdiskId: i.RamdiskId,
    rootDeviceType: i.RootDeviceType,
    rootDeviceName: i.RootDeviceName,
    virtualizationType: i.VirtualizationType,
    platform: i.Platform,
    creationDate: i.CreationDate,
    blockDeviceMappings: (i.BlockDeviceMappings ?? [])
      .filter((m) => m.DeviceName)
      .map((m) =>
        defined({
          deviceName: m.DeviceName!,
          virtualName: m.VirtualName,
          snapshotId: m.Ebs?.SnapshotId,
          volumeSizeGiB: m.Ebs?.VolumeSize,
          deleteOnTermination: m.Ebs?.DeleteOnTermination,
          noDevice: m.NoDevice !== undefined && m.NoDevice !== null ? true : undefined,
          volumeType: m.Ebs?.VolumeType,
        }),
      ),
    productCodes: productCodes(i.ProductCodes),
    bootMode: i.BootMode,
    enaSupport: i.EnaSupport,
    imdsSupport: i.ImdsSupport,
  }) as Ec2Image;
}

function productCodes(
  codes: readonly { ProductCodeId?: string | null; ProductCodeType?: string | null }[] | null | undefined,
) {
  const kept = (codes ?? [])
    .filter((c) => c.ProductCodeId)
    .map((c) => defined({ id: c.ProductCodeId!, type: c.ProductCodeType ?? undefined }));
  return kept.length ? kept : undefined;
}

/** One instance of DescribeInstances' reservations. */
export function instanceRecord(value: unknown, where: string): Ec2Instance {
  const i = parse(sdkInstance, value, where);
  return defined({
    id: i.InstanceId,
    imageId: i.ImageId,
    state: i.State?.Name,
    rootDeviceType: i.RootDeviceType,
    rootDeviceName: i.RootDeviceName,
    kernelId: i.KernelId,
    ramdiskId: i.RamdiskId,
    architecture: i.Architecture,
    platform: i.Platform,
    availabilityZone: i.Placement?.AvailabilityZone,
    privateIpAddress: i.PrivateIpAddress,
    publicIpAddress: i.PublicIpAddress,
    volumes: (i.BlockDeviceMappings ?? [])
      .filter((m) => m.DeviceName)
      .map((m) => defined({ deviceName: m.DeviceName!, volumeId: m.Ebs?.VolumeId })),
  }) as Ec2Instance;
}

/** A mapping in the SDK's shape, for RegisterImage and CreateImage. */
export function sdkBlockDeviceMapping(m: Ec2BlockDeviceMapping) {
  const ebs =
    m.snapshotId !== undefined ||
    m.volumeSizeGiB !== undefined ||
    m.deleteOnTermination !== undefined ||
    m.volumeType !== undefined
      ? defined({
          SnapshotId: m.snapshotId,
          VolumeSize: m.volumeSizeGiB,
          DeleteOnTermination: m.deleteOnTermination,
          VolumeType: m.volumeType as VolumeType | undefined,
        })
      : undefined;
  return defined({
    DeviceName: m.deviceName,
    VirtualName: m.virtualName,
    NoDevice: m.noDevice ? "" : undefined,
    Ebs: ebs,
  });
}
