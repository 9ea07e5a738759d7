/**
 * An EC2-family image (an EMI, EKI or ERI of Eucalyptus; an AMI) as the workflows see every store's images.
 * An instance-store image is a bundle: its data is the raw disk (or kernel, or ramdisk) the bundle holds, read
 * through its manifest; an EBS-backed one is a snapshot the EC2 API cannot read out (`diskFormat` left unset,
 * and the download refuses it by name). A paravirtual image, or one that names a kernel, is a Xen guest.
 */
import type { ProviderImage } from "../provider.js";
import type { Ec2Image } from "../ec2/ec2-records.js";
import { isBundleImage } from "../ec2/bundle-images.js";
import { glanceArchitectureOf } from "../ec2/ec2-architecture.js";

/** The disk format of every bundle's content. */
export const BUNDLE_DISK_FORMAT = "raw";

const STATES: Readonly<Record<string, ProviderImage["state"]>> = {
  available: "ready",
  pending: "pending",
  transient: "pending",
};

/** Why an EBS-backed image cannot be read, for every message that meets one. */
export const EBS_UNREADABLE =
  "is EBS-backed (a snapshot): the EC2 API gives no way to read its bytes, so it can be shared and deleted " +
  "here but not exported or migrated (the cloud's own export can)";

/**
 * `image` as a ProviderImage; `sizes` are the bundle's declared image size and bundled (compressed) size when the
 * caller read its manifest.
 */
export function providerImageOf(image: Ec2Image, sizes?: { size: number; bundledSize: number }): ProviderImage {
  const properties: Record<string, string> = {};
  const put = (key: string, value: string | undefined) => {
    if (value) properties[key] = value;
  };
  // In Glance's words: what an OpenStack destination and Nova's scheduler understand.
  put("architecture", image.architecture && glanceArchitectureOf(image.architecture));
  put("kernel_id", image.kernelId);
  put("ramdisk_id", image.ramdiskId);
  put("image_location", image.location);
  put("image_type", image.imageType);
  put("root_device_type", image.rootDeviceType);
  put("root_device_name", image.rootDeviceName);
  put("virtualization_type", image.virtualizationType);
  put("description", image.description);
  const xenGuest = image.virtualizationType === "paravirtual" || !!image.kernelId;
  return {
    id: image.id,
    name: image.name ?? image.id,
    state: STATES[image.state] ?? "failed",
    rawStatus: image.state,
    ...(isBundleImage(image) ? { diskFormat: BUNDLE_DISK_FORMAT } : {}),
    ...(sizes ? { sizeBytes: sizes.size, pieceBytes: sizes.bundledSize } : {}),
    visibility: image.public ? "public" : "private",
    properties,
    ...(image.creationDate ? { createdAt: image.creationDate } : {}),
    ...(xenGuest ? { xenGuest } : {}),
    ...(isBundleImage(image) ? {} : { unreadable: EBS_UNREADABLE }),
  };
}
