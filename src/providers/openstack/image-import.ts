/**
 * Glance's interoperable image import (API ≥ 2.6), used when the cloud advertises it: `glance-direct`
 * stages the data (`PUT /stage`) and asks Glance to import it (`POST /import`), which lets the cloud run its
 * import plugins (format checks, conversion) instead of storing the bytes as sent. Other methods
 * (web-download, glance-download) are not used yet.
 */
import type { CreateImageRequest, GlanceClient, UploadOptions } from "./glance-client.js";
import type { GlanceImage } from "./glance-image.js";
import { OpenStackError } from "./errors.js";

/** The import methods the cloud offers (`GET /v2/info/import`); empty when import is off or unknown. */
export async function importMethods(glance: GlanceClient): Promise<string[]> {
  try {
    const body = (await glance.service.json({ method: "GET", path: "/v2/info/import", expect: [200] })) as {
      "import-methods"?: { value?: unknown };
    };
    const value = body?.["import-methods"]?.value;
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch (e) {
    if (e instanceof OpenStackError && e.status === 404) return [];
    throw e;
  }
}

/**
 * Creates an image and imports `data` with glance-direct, waiting for `active`. The record is deleted if
 * anything fails, as with a plain upload.
 */
export async function uploadWithGlanceDirect(
  glance: GlanceClient,
  req: CreateImageRequest,
  data: AsyncIterable<Uint8Array>,
  options: UploadOptions & { activeTimeoutMs?: number } = {},
): Promise<GlanceImage> {
  const methods = await importMethods(glance);
  if (!methods.includes("glance-direct")) {
    throw new OpenStackError(
      { cloud: glance.cloud, call: "glance GET /v2/info/import" },
      `the cloud does not offer glance-direct import (it offers: ${methods.join(", ") || "none"})`,
    );
  }
  const image = await glance.createImage(req);
  try {
    await glance.uploadImageData(image.id, data, options, "stage");
    await glance.service.send({
      method: "POST",
      path: `/v2/images/${encodeURIComponent(image.id)}/import`,
      callName: "POST /v2/images/{id}/import",
      json: { method: { name: "glance-direct" } },
      expect: [202],
    });
    return await glance.waitForImageStatus(image.id, "active", {
      timeoutMs: options.activeTimeoutMs ?? 10 * 60_000,
      signal: options.signal,
    });
  } catch (e) {
    await glance.deleteImage(image.id, { ignoreMissing: true }).catch(() => undefined);
    throw e;
  }
}
