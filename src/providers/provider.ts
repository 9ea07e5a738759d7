/**
 * The common shape of an image store the workflows use: an OpenStack cloud (Glance + Nova), the EC2 family
 * (AMIs + EBS snapshots), or a local directory. Each provider maps its own records onto `ProviderImage` and
 * streams bytes in and out; what a provider cannot do is declared in `capabilities`, not discovered by a
 * failing call. Data is always a stream of bytes in the image's disk format — format conversion is the
 * format engine's business, so a provider never looks inside the bytes.
 */

import type { ImageInput } from "../formats/inputs/image-input.js";

export interface ProviderImage {
  /** The provider's own id (a Glance UUID, an AMI id, a file name). */
  readonly id: string;
  readonly name: string;
  /** Normalised: "ready" when its data can be read, "pending" while being made, "failed" when it never will. */
  readonly state: "ready" | "pending" | "failed";
  /** The provider's own status word, for messages. */
  readonly rawStatus: string;
  readonly diskFormat?: string;
  readonly sizeBytes?: number;
  readonly visibility: "private" | "shared" | "public";
  /** A hash of the stored bytes, when the provider records one. */
  readonly hash?: { readonly algorithm: string; readonly value: string };
  readonly properties: Readonly<Record<string, string>>;
  readonly createdAt?: string;
  /**
   * The store's metadata says this is a Xen guest (xen-guest-image.ts: `hypervisor_type`/`vm_mode` xen): a
   * migration makes it bootable on a PC unless told not to.
   */
  readonly xenGuest?: boolean;
  /** Why its bytes cannot be read out of the store, when they cannot (an EBS-backed AMI is a snapshot). */
  readonly unreadable?: string;
  /**
   * Its bytes come only as a stream from the start (`downloadImage`), even from a store whose other images open
   * in place (`capabilities.randomAccess`): an instance-store AMI is a compressed, encrypted bundle, beside
   * EBS-backed AMIs read block by block.
   */
  readonly sequentialOnly?: boolean;
  /**
   * What a download given `DownloadOptions.partCache` keeps there at most (a bundle's compressed size), for the
   * preflight; absent for stores that keep nothing.
   */
  readonly pieceBytes?: number;
}

export interface TransferOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (bytes: number, total?: number) => void;
}

export interface DownloadOptions extends TransferOptions {
  /**
   * Start at this byte (a resumed download). The provider can then not verify the whole image's hash as the
   * bytes pass: the caller verifies the assembled file against `ProviderImage.hash` itself.
   */
  readonly offset?: number;
  /**
   * false: skip the provider's check of the bytes against its recorded hash, because the caller verifies them
   * another way (a same-format copy compares the destination's own hash of what it stored with the source's).
   */
  readonly verify?: boolean;
  /**
   * A folder of the caller's (a job's own) where a store whose images are read in pieces — a bundle's parts —
   * keeps each verified piece, so that a later run of an interrupted download fetches only the pieces it has not
   * got. It takes up to the stored (compressed) size of the image; the caller removes it once the download is
   * complete. Stores that read an image as one stream (Glance, a local file) ignore it.
   */
  readonly partCache?: string;
}

export interface UploadOptions extends TransferOptions {
  /**
   * Called once the destination's record exists and before any data flows, with its id: a job records it so
   * that a crash mid-upload leaves an id to delete, never an unknown half-made image.
   */
  readonly onCreated?: (id: string) => void | Promise<void>;
  /**
   * The hash the data is known to have (the source's recorded hash, for a same-format copy). The provider may
   * then skip hashing what it sends and check its own hash of what it stored against this one when it uses
   * that algorithm; the returned image's `hash` says what it recorded.
   */
  readonly trustedHash?: { readonly algorithm: string; readonly value: string };
  /**
   * What lets an interrupted upload continue where it stopped, for stores that can (a bundle: the parts already
   * stored are not sent again). `state` is what an earlier run of the job saved; the store calls `save` before
   * any byte moves with what a later run needs (for a bundle, its prefix and AES key: the job keeps it in its
   * state file, readable by its owner only). Opaque to the caller.
   */
  readonly resume?: { readonly state?: unknown; save(state: unknown): Promise<void> };
  /** Leave what a failed upload stored (--keep), for a look or a later resume; by default it is removed. */
  readonly keepOnFailure?: boolean;
}

/**
 * Positional reads of an image's stored bytes (HTTP Range on Glance, pread on a local file), so the format
 * engine can read a disk where it lies without a local copy. Reads may be issued concurrently.
 */
export interface OpenImageInputOptions {
  readonly signal?: AbortSignal;
  /**
   * --keep: what the store made only to be read (an AMI exported to S3) stays when the input is closed, as the
   * job's other leftovers stay (the store cannot tell whether the job fails after the input is closed).
   */
  readonly keep?: boolean;
}

export interface UploadImageRequest {
  readonly name: string;
  /** One of `capabilities.diskFormats`. */
  readonly diskFormat: string;
  readonly sizeBytes?: number;
  /** Private unless asked: providers never publish by default. */
  readonly visibility?: "private" | "public";
  readonly properties?: Readonly<Record<string, string>>;
  /** The layout within the disk format, when chromogenic wrote it (a VMDK's createType: "streamOptimized"). */
  readonly subformat?: string;
  /** What inspecting the disk found, for stores that must be told how to start it. */
  readonly guest?: GuestFacts;
}

/** Facts about the guest on a disk, found by looking at the disk (guest/inspect), never by trusting metadata. */
export interface GuestFacts {
  /** The firmware its loaders start under (guest/inspect/firmware-support.ts). */
  readonly firmware?: "bios" | "uefi" | "both" | "unknown";
  /** The machine its programs are built for, in Glance's words (guest/inspect/guest-architecture.ts). */
  readonly architecture?: "x86_64" | "i686" | "aarch64" | "unknown";
  /** Whether its newest kernel has the Elastic Network Adapter's driver (guest/inspect/ena-driver.ts). */
  readonly ena?: boolean;
}

export interface CreateImageFromInstanceRequest {
  /** The instance's id or name. */
  readonly instance: string;
  readonly imageName: string;
  readonly properties?: Readonly<Record<string, string>>;
  /** "public": anyone may launch the image (the image the job keeps, when the cloud makes it); private by default. */
  readonly visibility?: "private" | "public";
  /** Upper bound for the whole wait; providers scale their own default with the disk size. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ProviderCapabilities {
  /** Disk formats the store accepts, most preferred first (the one a workflow converts to). */
  readonly diskFormats: readonly string[];
  readonly canCreateImageFromInstance: boolean;
  /** Whether downloads can resume after a dropped connection. */
  readonly resumableDownload: boolean;
  /** Whether images can be shared with another account/project without copying. */
  readonly sharing: boolean;
  /** Whether `openImageInput` gives positional reads of an image's bytes. */
  readonly randomAccess: boolean;
  /** The hash the store records of each image it stores (Glance: its configured multihash, sha512 by default). */
  readonly hashAlgorithm?: string;
  /**
   * Images of this store may boot with a kernel and ramdisk that are images of the same store, named by the
   * `kernel_id`/`ramdisk_id` properties (Eucalyptus' EKI/ERI, EC2's AKI/ARI); such an image is stored with the
   * property `image_type` set to "kernel" or "ramdisk".
   */
  readonly externalKernels?: boolean;
  /** Every image of this store is a Xen guest (Eucalyptus, EC2's paravirtual AMIs), whatever its metadata says. */
  readonly xenGuests?: boolean;
}

export interface ImageProvider {
  /** A short name for messages: "openstack:mycloud/RegionOne", "local:/srv/images". */
  readonly label: string;
  capabilities(): Promise<ProviderCapabilities>;
  listImages(): AsyncIterable<ProviderImage>;
  /** By id, else by unique name; undefined when absent. */
  getImage(idOrName: string): Promise<ProviderImage | undefined>;
  /** The image's bytes, verified against the provider's recorded hash when it has one (and no offset is given). */
  downloadImage(id: string, options?: DownloadOptions): AsyncIterable<Uint8Array>;
  /**
   * The image's bytes as an input the format engine reads in place (when `capabilities.randomAccess`): positional
   * reads over HTTP Range, or the store's own file.
   */
  openImageInput?(id: string, options?: OpenImageInputOptions): Promise<ImageInput>;
  /**
   * The image's bytes as a file on this host, when the store keeps them so (the local provider): read in place,
   * never copied. Undefined for remote stores.
   */
  localImagePath?(id: string): Promise<string | undefined>;
  /** Stores bytes as a new image; on failure nothing half-made is left behind (while the process lives). */
  uploadImage(
    request: UploadImageRequest,
    data: AsyncIterable<Uint8Array>,
    options?: UploadOptions,
  ): Promise<ProviderImage>;
  /** Shares an image with another project/account (when `capabilities.sharing`). */
  shareImage?(id: string, member: string): Promise<void>;
  deleteImage(id: string): Promise<void>;
  /**
   * Whether the image `createImageFromInstance` would make of this instance can be read (downloaded), when the
   * store knows before making it: an EBS-backed EC2 instance gives a snapshot the EC2 API cannot read out.
   * Absent: readable.
   */
  instanceImageReadable?(instance: string, signal?: AbortSignal): Promise<boolean>;
  /** Snapshots a running or stopped instance into a ready image (throws if `canCreateImageFromInstance` is false). */
  createImageFromInstance(request: CreateImageFromInstanceRequest): Promise<ProviderImage>;
}
