/**
 * The common shape of an image store the workflows use: an OpenStack cloud (Glance + Nova), the EC2 family
 * (AMIs + EBS snapshots), or a local directory. Each provider maps its own records onto `ProviderImage` and
 * streams bytes in and out; what a provider cannot do is declared in `capabilities`, not discovered by a
 * failing call. Data is always a stream of bytes in the image's disk format — format conversion is the
 * format engine's business, so a provider never looks inside the bytes.
 */

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
}

export interface TransferOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (bytes: number, total?: number) => void;
}

export interface UploadImageRequest {
  readonly name: string;
  /** One of `capabilities.diskFormats`. */
  readonly diskFormat: string;
  readonly sizeBytes?: number;
  /** Private unless asked: providers never publish by default. */
  readonly visibility?: "private" | "public";
  readonly properties?: Readonly<Record<string, string>>;
}

export interface CreateImageFromInstanceRequest {
  /** The instance's id or name. */
  readonly instance: string;
  readonly imageName: string;
  readonly properties?: Readonly<Record<string, string>>;
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
}

export interface ImageProvider {
  /** A short name for messages: "openstack:mycloud/RegionOne", "local:/srv/images". */
  readonly label: string;
  capabilities(): Promise<ProviderCapabilities>;
  listImages(): AsyncIterable<ProviderImage>;
  /** By id, else by unique name; undefined when absent. */
  getImage(idOrName: string): Promise<ProviderImage | undefined>;
  /** The image's bytes, verified against the provider's recorded hash when it has one. */
  downloadImage(id: string, options?: TransferOptions): AsyncIterable<Uint8Array>;
  /** Stores bytes as a new image; on failure nothing half-made is left behind. */
  uploadImage(
    request: UploadImageRequest,
    data: AsyncIterable<Uint8Array>,
    options?: TransferOptions,
  ): Promise<ProviderImage>;
  deleteImage(id: string): Promise<void>;
  /** Snapshots a running or stopped instance into a ready image (throws if `canCreateImageFromInstance` is false). */
  createImageFromInstance(request: CreateImageFromInstanceRequest): Promise<ProviderImage>;
}
