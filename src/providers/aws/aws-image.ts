/**
 * An AMI as the workflows see every store's images, and the choices RegisterImage needs made for a new one.
 * An EBS-backed AMI's data is its root snapshot, read as a raw disk of the volume's size through the EBS direct
 * APIs; an instance-store AMI's is the raw disk its S3 bundle holds, of the size its manifest declares, read as
 * one verified stream (ec2/bundle-images.ts, shared with Eucalyptus), never in place. The AMI's boot mode
 * travels as Glance's `hw_firmware_type`, so an AMI migrated to OpenStack starts under the same firmware.
 */
import type { ProviderImage, UploadImageRequest } from "../provider.js";
import type { Ec2BlockDeviceMapping, Ec2Image } from "../ec2/ec2-records.js";
import { providerImageOf } from "../eucalyptus/eucalyptus-image.js";
import { isBundleImage, type BundleSizes } from "../ec2/bundle-images.js";
import { UsageError } from "../../util/errors.js";
import type { Ec2BootMode } from "../ec2/ec2-images.js";

const GIB = 1024 ** 3;

/** What an EBS snapshot holds, read or written: the volume's bytes as they are. */
export const SNAPSHOT_DISK_FORMAT = "raw";

/** Why an instance-store AMI that names no bundle is not read. */
export const INSTANCE_STORE_UNREADABLE = "is an instance-store AMI whose location names no S3 bundle to read";

/** The block device of `image` that holds its root filesystem's snapshot. */
export function rootSnapshotOf(image: Ec2Image, label: string): Ec2BlockDeviceMapping & { snapshotId: string } {
  if (image.rootDeviceType !== "ebs") {
    throw new UsageError(`${label}: ${image.id} is an instance-store AMI: it has no snapshot, its bytes are a bundle`);
  }
  const name = (d: string | undefined) => (d ?? "").replace(/^\/dev\//, "");
  const root = image.blockDeviceMappings.find((m) => name(m.deviceName) === name(image.rootDeviceName));
  if (!root?.snapshotId) {
    throw new UsageError(
      `${label}: ${image.id} names no snapshot for its root device ${image.rootDeviceName ?? "(none)"}`,
    );
  }
  return { ...root, snapshotId: root.snapshotId };
}

/** `sizes`: an instance-store AMI's, when the caller read its manifest (listing does not). */
export function awsProviderImage(image: Ec2Image, sizes?: BundleSizes): ProviderImage {
  const base = providerImageOf(image, sizes);
  if (image.rootDeviceType !== "ebs") {
    // A bundle is gzip inside AES-CBC: it can only be read from its start.
    if (isBundleImage(image)) return { ...base, sequentialOnly: true };
    return { ...base, unreadable: INSTANCE_STORE_UNREADABLE };
  }
  const { unreadable: _ebsUnreadableElsewhere, ...readable } = base;
  const root = image.blockDeviceMappings.find((m) => m.deviceName === image.rootDeviceName);
  const firmware = image.bootMode === "uefi" ? "uefi" : image.bootMode === "legacy-bios" ? "bios" : undefined;
  return {
    ...readable,
    diskFormat: SNAPSHOT_DISK_FORMAT,
    ...(root?.volumeSizeGiB ? { sizeBytes: root.volumeSizeGiB * GIB } : {}),
    properties: { ...readable.properties, ...(firmware ? { hw_firmware_type: firmware } : {}) },
  };
}

/**
 * The BootMode for RegisterImage: what the disk itself showed (both loaders: uefi-preferred, so the instance
 * type decides), else what the source's metadata said, else AWS's default (legacy BIOS) by leaving it unset.
 */
export function bootModeFor(request: UploadImageRequest): Ec2BootMode | undefined {
  switch (request.guest?.firmware) {
    case "both":
      return "uefi-preferred";
    case "uefi":
      return "uefi";
    case "bios":
      return "legacy-bios";
    default:
      break;
  }
  const said = request.properties?.hw_firmware_type;
  return said === "uefi" ? "uefi" : said === "bios" ? "legacy-bios" : undefined;
}

/**
 * RegisterImage's EnaSupport: what inspecting the guest found (cleaning mounts it and looks for the driver in its
 * newest kernel), else true — every current instance type presents only an ENA card, and every kernel since
 * 4.9 has its driver, so an AMI registered without it would start only on the previous generation's types.
 */
export function enaSupportFor(request: UploadImageRequest): boolean {
  return request.guest?.ena ?? true;
}
