/**
 * Glance v2: list (paginated), show, find by name, create, upload as a stream with progress, properties,
 * tags, visibility (private unless asked), members, delete, and a waiter for `active`. Downloads are in
 * `image-download.ts`. Every call goes through `ServiceClient`, which owns auth, retries and errors, except the
 * data upload: `streaming-upload.ts` sends that with bounded memory, keeping the same token and errors.
 */
import type { KeystoneSession } from "./keystone-session.js";
import { sleep } from "./keystone-session.js";
import { ServiceClient } from "./service-client.js";
import { ImageVerificationError, OpenStackError, WaitError } from "./errors.js";
import { paginate } from "./paginate.js";
import { uploadStream } from "./streaming-upload.js";
import {
  GlanceImageListSchema,
  GlanceImageSchema,
  GlanceImageSchemaDocument,
  GlanceMemberSchema,
  type GlanceImage,
  type GlanceMember,
  type ImageVisibility,
} from "./glance-image.js";

export interface CreateImageRequest {
  readonly name: string;
  readonly diskFormat: string;
  readonly containerFormat?: string;
  /** Private unless the caller asks otherwise: an image must never become visible by accident. */
  readonly visibility?: ImageVisibility;
  readonly properties?: Readonly<Record<string, string>>;
  readonly tags?: readonly string[];
  readonly minDiskGiB?: number;
  readonly minRamMiB?: number;
}

export interface TransferProgress {
  readonly bytes: number;
  /** Known when the size was given (upload) or Glance recorded it (download). */
  readonly total?: number;
}

export interface UploadOptions {
  /** The size in bytes, when known: Glance then refuses a mismatch instead of storing a short image. */
  readonly size?: number;
  readonly onProgress?: (p: TransferProgress) => void;
  readonly signal?: AbortSignal;
}

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

export interface ListImagesFilter {
  readonly name?: string;
  readonly visibility?: ImageVisibility | "all";
  readonly owner?: string;
  readonly status?: string;
  readonly tag?: string;
  readonly memberStatus?: "pending" | "accepted" | "rejected" | "all";
  /** Page size asked of Glance (it caps it at its own api_limit_max). */
  readonly pageSize?: number;
}

/** Image statuses from which `active` can no longer be reached. */
const DEAD_STATUSES = new Set(["killed", "deleted", "pending_delete", "deactivated"]);

export class GlanceClient {
  readonly service: ServiceClient;

  constructor(session: KeystoneSession) {
    this.service = new ServiceClient(session, "image", { label: "glance" });
  }

  get cloud(): string {
    return this.service.session.cloud;
  }

  listImages(filter: ListImagesFilter = {}): AsyncGenerator<GlanceImage> {
    const query = new URLSearchParams();
    query.set("limit", String(filter.pageSize ?? 100));
    if (filter.name !== undefined) query.set("name", filter.name);
    if (filter.visibility) query.set("visibility", filter.visibility);
    if (filter.owner) query.set("owner", filter.owner);
    if (filter.status) query.set("status", filter.status);
    if (filter.tag) query.set("tag", filter.tag);
    if (filter.memberStatus) query.set("member_status", filter.memberStatus);
    return paginate(`/v2/images?${query}`, async (link) => {
      // Glance's "next" is relative to the endpoint root, e.g. "/v2/images?limit=100&marker=…".
      const [path, search] = splitLink(link);
      const body = GlanceImageListSchema.parse(
        await this.service.json({ method: "GET", path, query: search, callName: "GET /v2/images", expect: [200] }),
      );
      return { items: body.images, next: body.next };
    });
  }

  /**
   * The disk formats this Glance accepts (its `disk_formats` setting, published in the image schema's
   * disk_format enum), in Glance's order.
   */
  async diskFormats(): Promise<string[]> {
    const schema = GlanceImageSchemaDocument.parse(
      await this.service.json({
        method: "GET",
        path: "/v2/schemas/image",
        callName: "GET /v2/schemas/image",
        expect: [200],
      }),
    );
    return schema.properties.disk_format.enum.filter((f): f is string => typeof f === "string");
  }

  async getImage(id: string): Promise<GlanceImage> {
    return GlanceImageSchema.parse(
      await this.service.json({
        method: "GET",
        path: `/v2/images/${enc(id)}`,
        callName: "GET /v2/images/{id}",
        expect: [200],
      }),
    );
  }

  /** The image with this id, else the one image with this name; undefined if none; an error if several. */
  async findImage(nameOrId: string): Promise<GlanceImage | undefined> {
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(nameOrId)) {
      try {
        return await this.getImage(nameOrId);
      } catch (e) {
        if (!(e instanceof OpenStackError && e.status === 404)) throw e;
      }
    }
    const matches: GlanceImage[] = [];
    for await (const image of this.listImages({ name: nameOrId })) matches.push(image);
    if (matches.length > 1) {
      throw new OpenStackError(
        { cloud: this.cloud, call: "glance find image by name" },
        `${matches.length} images are named "${nameOrId}" (${matches.map((m) => m.id).join(", ")}): use an id`,
      );
    }
    return matches[0];
  }

  async createImage(req: CreateImageRequest): Promise<GlanceImage> {
    const body: Record<string, unknown> = {
      ...req.properties,
      name: req.name,
      disk_format: req.diskFormat,
      container_format: req.containerFormat ?? "bare",
      visibility: req.visibility ?? "private",
      tags: [...(req.tags ?? [])],
    };
    if (req.minDiskGiB !== undefined) body.min_disk = req.minDiskGiB;
    if (req.minRamMiB !== undefined) body.min_ram = req.minRamMiB;
    return GlanceImageSchema.parse(
      await this.service.json({
        method: "POST",
        path: "/v2/images",
        callName: "POST /v2/images",
        json: body,
        expect: [201],
      }),
    );
  }

  /** Sets (adds or replaces) and removes properties, visibility or other fields with one JSON patch. */
  async updateImage(
    id: string,
    change: { set?: Readonly<Record<string, string | number | boolean>>; remove?: readonly string[] },
  ): Promise<GlanceImage> {
    const current = await this.getImage(id);
    const ops: { op: string; path: string; value?: unknown }[] = [];
    for (const [k, v] of Object.entries(change.set ?? {})) {
      ops.push({ op: k in current ? "replace" : "add", path: `/${jsonPointer(k)}`, value: v });
    }
    for (const k of change.remove ?? []) if (k in current) ops.push({ op: "remove", path: `/${jsonPointer(k)}` });
    if (ops.length === 0) return current;
    return GlanceImageSchema.parse(
      await this.service.json({
        method: "PATCH",
        path: `/v2/images/${enc(id)}`,
        callName: "PATCH /v2/images/{id}",
        headers: { "content-type": "application/openstack-images-v2.1-json-patch" },
        json: ops,
        // "add" and "replace" of fixed values give the same result when repeated; a repeated "remove" fails.
        retryable: ops.every((o) => o.op !== "remove"),
        expect: [200],
      }),
    );
  }

  async addTag(id: string, tag: string): Promise<void> {
    await this.service.send({
      method: "PUT",
      path: `/v2/images/${enc(id)}/tags/${enc(tag)}`,
      callName: "PUT /v2/images/{id}/tags/{tag}",
      expect: [204],
    });
  }

  async removeTag(id: string, tag: string): Promise<void> {
    await this.service.send({
      method: "DELETE",
      path: `/v2/images/${enc(id)}/tags/${enc(tag)}`,
      callName: "DELETE /v2/images/{id}/tags/{tag}",
      expect: [204, 404],
    });
  }

  /**
   * Sends the image data (`PUT /file`, or `/stage` for glance-direct) as a stream with bounded memory (see
   * `streaming-upload.ts`), reporting progress and hashing what is sent. It can be sent only once, so this call
   * is never retried; the caller (`uploadImage`) cleans up on failure.
   */
  async uploadImageData(
    id: string,
    data: AsyncIterable<Uint8Array>,
    options: UploadOptions = {},
    /** "file" stores the data as the image; "stage" puts it in the import staging area (glance-direct). */
    destination: "file" | "stage" = "file",
  ): Promise<{ bytes: number; sha512: string }> {
    const sent = await uploadStream(this.service, {
      path: `/v2/images/${enc(id)}/${destination}`,
      callName: `PUT /v2/images/{id}/${destination}`,
      data,
      size: options.size,
      onProgress: options.onProgress,
      signal: options.signal,
      // Glance's default multihash; hashing what we send lets the upload be checked end to end.
      sha512: true,
    });
    return { bytes: sent.bytes, sha512: sent.sha512! };
  }

  /**
   * Creates an image, uploads its data and waits for `active`. If anything fails after the record exists,
   * the record is deleted, so a failed upload never leaves a queued (or killed) image behind.
   */
  async uploadImage(
    req: CreateImageRequest,
    data: AsyncIterable<Uint8Array>,
    options: UploadOptions & { activeTimeoutMs?: number } = {},
  ): Promise<GlanceImage> {
    const image = await this.createImage(req);
    try {
      const sent = await this.uploadImageData(image.id, data, options);
      const active = await this.waitForImageStatus(image.id, "active", {
        timeoutMs: options.activeTimeoutMs ?? 10 * 60_000,
        signal: options.signal,
      });
      const call = { cloud: this.cloud, call: `glance upload image ${image.id}` };
      if (options.size !== undefined && sent.bytes !== options.size) {
        throw new OpenStackError(call, `the data had ${sent.bytes} bytes, ${options.size} were announced`);
      }
      if (active.size !== sent.bytes)
        throw new OpenStackError(call, `Glance stored ${active.size} bytes, ${sent.bytes} were sent`);
      if (active.os_hash_algo === "sha512" && active.os_hash_value !== sent.sha512) {
        throw new ImageVerificationError(
          call,
          "Glance's sha512 of the stored image differs from that of the data sent",
        );
      }
      return active;
    } catch (e) {
      await this.deleteImage(image.id).catch((cleanupError: unknown) => {
        (e as { cleanupError?: unknown }).cleanupError = cleanupError;
      });
      throw e;
    }
  }

  /** Polls until the image has `status`; fails early on a status that cannot lead there. */
  async waitForImageStatus(id: string, status: string, options: WaitOptions): Promise<GlanceImage> {
    const deadline = Date.now() + options.timeoutMs;
    let interval = options.intervalMs ?? 500;
    for (;;) {
      const image = await this.getImage(id);
      if (image.status === status) return image;
      if (DEAD_STATUSES.has(image.status)) {
        throw new WaitError(
          { cloud: this.cloud, call: `glance wait for image ${id} to be ${status}` },
          `image is ${image.status}`,
        );
      }
      if (Date.now() >= deadline) {
        throw new WaitError(
          { cloud: this.cloud, call: `glance wait for image ${id} to be ${status}` },
          `still ${image.status} after ${Math.round(options.timeoutMs / 1000)} s`,
        );
      }
      await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), options.signal);
      interval = Math.min(interval * 1.5, 5000);
    }
  }

  async deleteImage(id: string, options: { ignoreMissing?: boolean } = {}): Promise<void> {
    await this.service.send({
      method: "DELETE",
      path: `/v2/images/${enc(id)}`,
      callName: "DELETE /v2/images/{id}",
      expect: options.ignoreMissing ? [204, 404] : [204],
    });
  }

  /**
   * Shares the image with another project. Glance accepts members only on `shared` images, so a private
   * image is switched to `shared` first (still invisible to everyone but its members).
   */
  async addMember(id: string, projectId: string): Promise<GlanceMember> {
    const image = await this.getImage(id);
    if (image.visibility === "private") await this.updateImage(id, { set: { visibility: "shared" } });
    return GlanceMemberSchema.parse(
      await this.service.json({
        method: "POST",
        path: `/v2/images/${enc(id)}/members`,
        callName: "POST /v2/images/{id}/members",
        json: { member: projectId },
        expect: [200],
      }),
    );
  }

  /** As the member project: accept (or reject) an image shared with it, so it appears in its image list. */
  async setMemberStatus(
    id: string,
    projectId: string,
    status: "accepted" | "rejected" | "pending",
  ): Promise<GlanceMember> {
    return GlanceMemberSchema.parse(
      await this.service.json({
        method: "PUT",
        path: `/v2/images/${enc(id)}/members/${enc(projectId)}`,
        callName: "PUT /v2/images/{id}/members/{member}",
        json: { status },
        expect: [200],
      }),
    );
  }

  async listMembers(id: string): Promise<GlanceMember[]> {
    const body = (await this.service.json({
      method: "GET",
      path: `/v2/images/${enc(id)}/members`,
      callName: "GET /v2/images/{id}/members",
      expect: [200],
    })) as { members?: unknown[] };
    return (body.members ?? []).map((m) => GlanceMemberSchema.parse(m));
  }

  async removeMember(id: string, projectId: string): Promise<void> {
    await this.service.send({
      method: "DELETE",
      path: `/v2/images/${enc(id)}/members/${enc(projectId)}`,
      callName: "DELETE /v2/images/{id}/members/{member}",
      expect: [204, 404],
    });
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function jsonPointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

function splitLink(link: string): [string, Record<string, string>] {
  const url = new URL(link, "http://placeholder");
  // An endpoint with a path prefix (e.g. https://cloud/image) gets "/v2/…" links; keep only the "/v2…" part.
  const path = url.pathname.slice(Math.max(0, url.pathname.indexOf("/v2")));
  return [path, Object.fromEntries(url.searchParams)];
}
