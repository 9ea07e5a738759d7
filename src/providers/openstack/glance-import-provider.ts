/**
 * The interoperable import methods in provider terms (`ProviderImage`, `UploadImageRequest`), for the
 * workflows: an image Glance fetches from a URL itself (web-download), and an image copied server-side from
 * another region of the same Keystone (glance-download), where the bytes never pass through this machine.
 * Both are used only when the destination cloud advertises the method; `serverSideCopyPlan` says beforehand
 * whether a copy between two providers can be done that way, so a workflow can fall back to streaming.
 */
import type { ProviderImage, UploadImageRequest, UploadOptions } from "../provider.js";
import { toProviderImage, type OpenStackProvider } from "./openstack-provider.js";
import { KeystoneSession } from "./keystone-session.js";
import { GlanceClient } from "./glance-client.js";
import { OpenStackError } from "./errors.js";
import { expectedHash } from "./image-hash.js";
import type { GlanceImage } from "./glance-image.js";
import { importImage, importMethods } from "./glance-image-import.js";

export interface ImportFromUrlOptions extends UploadOptions {
  /** What the fetched image must match (e.g. a published SHA-512), checked once it is active. */
  readonly expect?: { readonly size?: number; readonly hash?: { readonly algorithm: string; readonly value: string } };
  readonly timeoutMs?: number;
}

/** Glance fetches `url` itself (web-download) into a new image; the record is deleted if that fails. */
export async function importImageFromUrl(
  provider: OpenStackProvider,
  request: UploadImageRequest,
  url: string,
  options: ImportFromUrlOptions = {},
): Promise<ProviderImage> {
  const image = await importImage(
    provider.glance,
    {
      name: request.name,
      diskFormat: request.diskFormat,
      visibility: request.visibility ?? "private",
      properties: request.properties,
    },
    { method: "web-download", uri: url },
    {
      onCreated: options.onCreated,
      onProgress: options.onProgress && ((p) => options.onProgress!(p.bytes, p.total)),
      signal: options.signal,
      expect: options.expect ?? (request.sizeBytes !== undefined ? { size: request.sizeBytes } : undefined),
      timeoutMs: options.timeoutMs,
    },
  );
  return toProviderImage(image);
}

export type ServerSideCopyPlan =
  | { readonly possible: true; readonly sourceRegion: string; readonly sourceImage: GlanceImage }
  | { readonly possible: false; readonly reason: string };

/**
 * Whether `target` can copy `imageId` from `source` with glance-download: the same Keystone, a source region,
 * the target advertising the method, and the target's credentials able to read the source image in the
 * source region (Glance fetches it with the target's token, found through the target's catalog).
 */
export async function serverSideCopyPlan(
  source: OpenStackProvider,
  target: OpenStackProvider,
  imageId: string,
): Promise<ServerSideCopyPlan> {
  const s = source.session.config;
  const t = target.session.config;
  if (normaliseAuthUrl(s.auth.auth_url) !== normaliseAuthUrl(t.auth.auth_url)) {
    return { possible: false, reason: "the clouds have different Keystones" };
  }
  if (!s.regionName) return { possible: false, reason: `cloud "${s.name}" names no region` };
  if (s.regionName === t.regionName && (await sameProject(source, target))) {
    return { possible: false, reason: "source and destination are the same region and project" };
  }
  const offered = await importMethods(target.glance);
  if (!offered.includes("glance-download")) {
    return {
      possible: false,
      reason: `the destination does not offer glance-download (it offers: ${offered.join(", ") || "none"})`,
    };
  }
  // The target's credentials, looking at the source region: what Glance will do with the target's token.
  const asTarget = new GlanceClient(new KeystoneSession({ ...t, regionName: s.regionName }));
  let sourceImage: GlanceImage;
  try {
    sourceImage = await asTarget.getImage(imageId);
  } catch (e) {
    if (e instanceof OpenStackError) {
      return {
        possible: false,
        reason: `the destination's credentials cannot read image ${imageId} in region ${s.regionName}: ${e.message}`,
      };
    }
    throw e;
  }
  if (sourceImage.status !== "active") {
    return { possible: false, reason: `image ${imageId} is ${sourceImage.status}, not active` };
  }
  return { possible: true, sourceRegion: s.regionName, sourceImage };
}

/**
 * Copies an image from `source`'s region into `target`'s with glance-download: the target's Glance pulls the
 * bytes from the source's Glance. The copy is checked against the source's size and hash; on failure the
 * new record is deleted. Throws `ImportMethodUnavailableError` (from the import) or an `OpenStackError`
 * naming the reason when `serverSideCopyPlan` says no.
 */
export async function copyImageBetweenRegions(
  source: OpenStackProvider,
  target: OpenStackProvider,
  imageId: string,
  request: Omit<UploadImageRequest, "diskFormat" | "sizeBytes">,
  options: UploadOptions & { readonly timeoutMs?: number } = {},
): Promise<ProviderImage> {
  const plan = await serverSideCopyPlan(source, target, imageId);
  if (!plan.possible) {
    // The method check comes first in importImage: let it give its standard error when that is the reason.
    if (!/does not offer glance-download/.test(plan.reason)) {
      throw new OpenStackError(
        { cloud: target.session.cloud, call: `glance-download of image ${imageId} from ${source.label}` },
        `a server-side copy is not possible: ${plan.reason}`,
      );
    }
  }
  const sourceImage = plan.possible ? plan.sourceImage : await source.glance.getImage(imageId);
  const hash = expectedHash(sourceImage);
  const image = await importImage(
    target.glance,
    {
      name: request.name,
      // Glance replaces both with the source's (they must merely be set before the import starts).
      diskFormat: sourceImage.disk_format ?? "raw",
      containerFormat: sourceImage.container_format ?? "bare",
      visibility: request.visibility ?? "private",
      properties: request.properties,
    },
    {
      method: "glance-download",
      imageId,
      region: source.session.config.regionName ?? "",
      serviceInterface: target.session.config.interface,
    },
    {
      onCreated: options.onCreated,
      onProgress: options.onProgress && ((p) => options.onProgress!(p.bytes, p.total)),
      signal: options.signal,
      expect: { size: sourceImage.size ?? undefined, hash },
      timeoutMs: options.timeoutMs,
    },
  );
  return toProviderImage(image);
}

async function sameProject(a: OpenStackProvider, b: OpenStackProvider): Promise<boolean> {
  const [sa, sb] = await Promise.all([a.session.scope(), b.session.scope()]);
  return sa.projectId !== undefined && sa.projectId === sb.projectId;
}

function normaliseAuthUrl(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/v3$/, "");
}
