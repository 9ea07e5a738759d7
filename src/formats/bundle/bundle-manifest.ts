/**
 * What a bundle's manifest (version 2007-10-10, the only one euca2ools and AWS's ec2-ami-tools write) says: the
 * target machine, the image's name, owner, digest and sizes, the AES key and IV wrapped for the cloud and the
 * user, the parts with their digests, and the owner's signature over the first two sections.
 */

export type BundleImageType = "machine" | "kernel" | "ramdisk";

export const BUNDLE_IMAGE_TYPES: readonly BundleImageType[] = ["machine", "kernel", "ramdisk"];

/** A bundle's part: its file name (next to the manifest) and the SHA-1 of its encrypted bytes, lower hex. */
export interface BundlePart {
  readonly filename: string;
  readonly digest: string;
}

/** The `<machine_configuration>` section. */
export interface MachineConfiguration {
  readonly architecture: string;
  /** `[virtual, device]`, e.g. `["ami", "sda1"]`, `["root", "/dev/sda1"]`; written for machine images only. */
  readonly blockDeviceMappings: readonly (readonly [string, string])[];
  readonly productCodes: readonly string[];
  /** An EKI, or "true" for a kernel image (Eucalyptus' marker). */
  readonly kernelId?: string;
  readonly ramdiskId?: string;
}

/** The `<image>` section. */
export interface BundleImage {
  readonly name: string;
  readonly user: string;
  readonly type: BundleImageType;
  /** SHA-1 of the tar stream, lower hex. */
  readonly digest: string;
  /** The image file's size (the tar member's). */
  readonly size: number;
  /** The encrypted stream's size: the sum of the parts. */
  readonly bundledSize: number;
  /** Hex of the RSA-encrypted hex key and IV strings. */
  readonly ec2EncryptedKey: string;
  readonly userEncryptedKey: string;
  readonly ec2EncryptedIv: string;
  readonly userEncryptedIv: string;
  readonly parts: readonly BundlePart[];
}

export interface BundleManifest {
  readonly bundler: { readonly name: string; readonly version: string; readonly release: string };
  readonly machineConfiguration: MachineConfiguration;
  readonly image: BundleImage;
  /** Hex RSASSA-PKCS1-v1_5 SHA-1 signature over `signedText`. */
  readonly signature: string;
}

/** A manifest as read: its fields, plus the exact bytes its signature covers. */
export interface ParsedBundleManifest extends BundleManifest {
  /** `<machine_configuration>…</machine_configuration><image>…</image>` exactly as in the file. */
  readonly signedText: Buffer;
}

/** Parts are 10 MiB, as euca2ools and ec2-ami-tools cut them. */
export const BUNDLE_PART_SIZE = 10 * 1024 * 1024;

/** euca2ools' part names: `<prefix>.part.NN`, two digits at least. */
export function bundlePartName(prefix: string, index: number): string {
  return `${prefix}.part.${String(index).padStart(2, "0")}`;
}

/** euca2ools' manifest name. */
export function bundleManifestName(prefix: string): string {
  return `${prefix}.manifest.xml`;
}
