/**
 * `ImageProvider` for an OpenStack cloud: Glance for images, Nova for instance snapshots.
 */
import type {
  CreateImageFromInstanceRequest,
  DownloadOptions,
  ImageProvider,
  ProviderCapabilities,
  ProviderImage,
  UploadImageRequest,
  UploadOptions,
} from "../provider.js";
import { ImageVerificationError, OpenStackError } from "./errors.js";
import { openHttpInput } from "../../formats/inputs/http-input.js";
import type { ImageInput } from "../../formats/inputs/image-input.js";
import { inPreferenceOrder } from "../../formats/registry.js";

/** Dropped connections an unverified download resumes after before giving up. */
import type { CloudConfig } from "./cloud-config.js";
import { KeystoneSession, type SessionOptions } from "./keystone-session.js";
import { GlanceClient } from "./glance-client.js";
import { customProperties, type GlanceImage } from "./glance-image.js";
import { isXenGuestImage } from "../xen-guest-image.js";
import { expectedHash } from "./image-hash.js";
import { downloadImage } from "./image-download.js";
import { NovaClient } from "./nova-client.js";
import { snapshotInstance } from "./instance-snapshot.js";
import { uploadStream } from "./streaming-upload.js";

/**
 * Glance's image property that names the layout within a disk format (its vocabulary: Nova's VMware driver and
 * Glance's own checks read `vmware_disktype` to tell a streamOptimized VMDK from a sparse one).
 */
const SUBFORMAT_PROPERTY: Readonly<Record<string, string>> = { vmdk: "vmware_disktype" };

export class OpenStackProvider implements ImageProvider {
  readonly session: KeystoneSession;
  readonly glance: GlanceClient;
  readonly nova: NovaClient;

  constructor(config: CloudConfig, options: SessionOptions = {}) {
    this.session = new KeystoneSession(config, options);
    this.glance = new GlanceClient(this.session);
    this.nova = new NovaClient(this.session);
  }

  get label(): string {
    const c = this.session.config;
    return `openstack:${c.name}${c.regionName ? `/${c.regionName}` : ""}`;
  }

  async capabilities(): Promise<ProviderCapabilities> {
    return {
      // What this Glance accepts, the formats chromogenic reads first in the engine's order of preference.
      diskFormats: inPreferenceOrder(await this.glance.diskFormats()),
      canCreateImageFromInstance: true,
      resumableDownload: true,
      sharing: true,
      // The random-access input makes its own connections, direct ones only: through a proxy, download.
      randomAccess: !this.session.network.proxyFor(new URL(await this.glance.service.baseUrl())),
      // Glance's default `hashing_algorithm`; an upload still checks what the stored image actually records.
      hashAlgorithm: "sha512",
    };
  }

  async *listImages(): AsyncIterable<ProviderImage> {
    for await (const image of this.glance.listImages()) yield toProviderImage(image);
  }

  async getImage(idOrName: string): Promise<ProviderImage | undefined> {
    const image = await this.glance.findImage(idOrName);
    return image && toProviderImage(image);
  }

  /** From `offset` or unverified (a resumed download, bytes the caller verifies another way): size-checked only. */
  downloadImage(id: string, options: DownloadOptions = {}): AsyncIterable<Uint8Array> {
    return downloadImage(this.glance, id, {
      signal: options.signal,
      offset: options.offset,
      verify: options.verify,
      onProgress: options.onProgress && ((p) => options.onProgress!(p.bytes, p.total)),
    });
  }

  async openImageInput(id: string, options: { signal?: AbortSignal } = {}): Promise<ImageInput> {
    const image = await this.glance.getImage(id);
    if (image.status !== "active") {
      throw new OpenStackError(
        { cloud: this.glance.cloud, call: `glance read image ${id}` },
        `image is ${image.status}, not active: it has no data to read`,
      );
    }
    // The image's data where Glance serves it, read with Range requests; the token is asked for before every
    // request (it is renewed as it nears expiry) and dropped after a 401 so the next one is fresh.
    const url = `${await this.glance.service.baseUrl()}/v2/images/${encodeURIComponent(image.id)}/file`;
    return openHttpInput(url, {
      headers: async () => ({ "x-auth-token": await this.session.token() }),
      onUnauthorized: (sent) => this.session.invalidate(sent["x-auth-token"] ?? ""),
      expectedSize: image.size ?? undefined,
      signal: options.signal,
      tls: this.session.network.tls,
      idleTimeoutMs: this.session.network.idleTimeoutMs,
    });
  }

  /**
   * Creates the record, reports its id (so a job can delete it after a crash), sends the data as one PUT and
   * waits for `active`, then checks Glance's size and sha512 against the bytes sent. A plain PUT rather than
   * interoperable import: the stored bytes are exactly those sent. On any failure the record is deleted.
   */
  async uploadImage(
    request: UploadImageRequest,
    data: AsyncIterable<Uint8Array>,
    options: UploadOptions = {},
  ): Promise<ProviderImage> {
    const glance = this.glance;
    const subformatProperty = request.subformat && SUBFORMAT_PROPERTY[request.diskFormat];
    const record = await glance.createImage({
      name: request.name,
      diskFormat: request.diskFormat,
      visibility: request.visibility ?? "private",
      properties: {
        ...firmwareProperty(request),
        ...request.properties,
        ...(subformatProperty ? { [subformatProperty]: request.subformat! } : {}),
      },
    });
    try {
      await options.onCreated?.(record.id);
      const transfer = {
        size: request.sizeBytes,
        signal: options.signal,
        onProgress:
          options.onProgress && ((p: { bytes: number; total?: number }) => options.onProgress!(p.bytes, p.total)),
      };
      // With a trusted hash, Glance's own hash of what it stored is checked against it below: hashing the bytes
      // here as well would only spend CPU the transfer needs.
      const sent = options.trustedHash
        ? { bytes: await this.sendUnhashed(record.id, data, transfer), sha512: undefined }
        : await glance.uploadImageData(record.id, data, transfer);
      const active = await glance.waitForImageStatus(record.id, "active", {
        timeoutMs: 10 * 60_000,
        signal: options.signal,
      });
      const call = { cloud: glance.cloud, call: `glance upload image ${record.id}` };
      if (request.sizeBytes !== undefined && sent.bytes !== request.sizeBytes) {
        throw new OpenStackError(call, `the data had ${sent.bytes} bytes, ${request.sizeBytes} were announced`);
      }
      if (active.size !== sent.bytes) {
        throw new OpenStackError(call, `Glance stored ${active.size} bytes, ${sent.bytes} were sent`);
      }
      if (sent.sha512 !== undefined && active.os_hash_algo === "sha512" && active.os_hash_value !== sent.sha512) {
        throw new ImageVerificationError(
          call,
          "Glance's sha512 of the stored image differs from that of the data sent",
        );
      }
      const trusted = options.trustedHash;
      const stored = expectedHash(active);
      if (trusted && stored && stored.algorithm === trusted.algorithm && stored.value !== trusted.value) {
        throw new ImageVerificationError(
          call,
          `Glance's ${stored.algorithm} of the stored image is ${stored.value}, the data's is ${trusted.value}`,
        );
      }
      return toProviderImage(active);
    } catch (e) {
      // Not on cancellation: Ctrl-C leaves a resumable job, whose resume deletes the record it noted.
      if (!options.signal?.aborted) await glance.deleteImage(record.id, { ignoreMissing: true }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * `PUT /file` of a stream without hashing it (the caller's trusted hash is checked afterwards), with bounded
   * memory: never retried, and aborted — not ended — when the source fails (see `streaming-upload.ts`).
   */
  private async sendUnhashed(
    id: string,
    data: AsyncIterable<Uint8Array>,
    options: { size?: number; signal?: AbortSignal; onProgress?: (p: { bytes: number; total?: number }) => void },
  ): Promise<number> {
    const sent = await uploadStream(this.glance.service, {
      path: `/v2/images/${encodeURIComponent(id)}/file`,
      callName: "PUT /v2/images/{id}/file",
      data,
      ...options,
    });
    return sent.bytes;
  }

  async shareImage(id: string, member: string): Promise<void> {
    await this.glance.addMember(id, member);
  }

  async deleteImage(id: string): Promise<void> {
    await this.glance.deleteImage(id, { ignoreMissing: true });
  }

  async createImageFromInstance(request: CreateImageFromInstanceRequest): Promise<ProviderImage> {
    const image = await snapshotInstance(this.nova, this.glance, {
      server: request.instance,
      imageName: request.imageName,
      metadata: request.properties,
      timeoutMs: request.timeoutMs,
      signal: request.signal,
    });
    return toProviderImage(image);
  }
}

export function toProviderImage(image: GlanceImage): ProviderImage {
  const state =
    image.status === "active"
      ? "ready"
      : ["killed", "deleted", "pending_delete", "deactivated"].includes(image.status)
        ? "failed"
        : "pending";
  return {
    id: image.id,
    name: image.name ?? "",
    state,
    rawStatus: image.status,
    diskFormat: image.disk_format ?? undefined,
    sizeBytes: image.size ?? undefined,
    visibility:
      image.visibility === "public" || image.visibility === "community"
        ? "public"
        : image.visibility === "private"
          ? "private"
          : "shared",
    hash: expectedHash(image),
    properties: customProperties(image),
    createdAt: image.created_at,
    ...(isXenGuestImage(customProperties(image)) ? { xenGuest: true } : {}),
  };
}

/**
 * Nova starts a guest under BIOS unless the image says `hw_firmware_type=uefi`: a disk whose only loader is
 * UEFI's (what inspecting it found) is marked so, unless the properties already say otherwise.
 */
function firmwareProperty(request: UploadImageRequest): Record<string, string> {
  return request.guest?.firmware === "uefi" ? { hw_firmware_type: "uefi" } : {};
}
