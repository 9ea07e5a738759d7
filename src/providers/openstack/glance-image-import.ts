/**
 * Glance's interoperable image import (API ≥ 2.6): the image record is created, then Glance is asked to fill
 * it by one of the methods the cloud advertises (`GET /v2/info/import`), and the import runs as a Glance task:
 *
 * - `glance-direct`: we stage the bytes (`PUT /stage`), Glance imports them (running the cloud's import
 *   plugins, e.g. format checks or conversion);
 * - `web-download`: Glance fetches the bytes from a URL itself, so they never pass through this machine;
 * - `glance-download`: Glance fetches the image from another region's Glance of the same Keystone, with the
 *   caller's token (in Glance since Zed, off by default; the server-side copy between regions).
 *
 * A method is used only when the cloud advertises it; otherwise the error names the method and what the cloud
 * offers. The task's outcome is read from `GET /v2/images/{id}/tasks` (API ≥ 2.12), because a failed import
 * sends the image back to `queued` rather than to an error status; its progress ("Copied N MiB") is reported.
 * On failure the record is deleted, so nothing is left queued or importing.
 */
import type { CreateImageRequest, GlanceClient, TransferProgress } from "./glance-client.js";
import type { GlanceImage } from "./glance-image.js";
import { sleep } from "./keystone-session.js";
import { ImageVerificationError, OpenStackError, WaitError } from "./errors.js";

export type ImportMethodName = "glance-direct" | "web-download" | "glance-download";

/** What Glance should import from; `glance-direct`'s bytes are passed separately (`ImportOptions.data`). */
export type ImportSource =
  | { readonly method: "glance-direct" }
  | { readonly method: "web-download"; readonly uri: string }
  | {
      readonly method: "glance-download";
      /** The image's id in the other region's Glance. */
      readonly imageId: string;
      /** The other region's name in the (shared) Keystone catalog. */
      readonly region: string;
      /** Which catalog interface Glance uses to reach the other Glance (Glance's default: public). */
      readonly serviceInterface?: "public" | "internal" | "admin";
    };

export interface ImportOptions {
  /** The bytes to stage, for glance-direct only. */
  readonly data?: AsyncIterable<Uint8Array>;
  /** glance-direct: the size of `data`, when known (Glance then refuses a mismatch). */
  readonly size?: number;
  /** Bytes sent (glance-direct) or copied by Glance (its task's "Copied N MiB"), and the total when known. */
  readonly onProgress?: (p: TransferProgress) => void;
  readonly signal?: AbortSignal;
  /**
   * Called with the new record's id before anything else happens to it, so a job can note it for cleanup
   * after a crash. When given, a cancelled import (signal aborted) leaves the record to that job's cleanup.
   */
  readonly onCreated?: (id: string) => void | Promise<void>;
  /** What the stored image must match (size and/or hash); checked once it is active. */
  readonly expect?: { readonly size?: number; readonly hash?: { readonly algorithm: string; readonly value: string } };
  /** How long the import may take once requested (default 10 minutes plus 1 minute per 100 MiB expected). */
  readonly timeoutMs?: number;
  /** Poll interval start (default 500 ms, growing to 5 s). */
  readonly intervalMs?: number;
}

/** The cloud does not offer the import method asked for: nothing was created. */
export class ImportMethodUnavailableError extends OpenStackError {
  override readonly code = "EIMPORT";
  readonly method: string;
  readonly offered: readonly string[];
  constructor(cloud: string, method: string, offered: readonly string[]) {
    super(
      { cloud, call: "glance GET /v2/info/import" },
      `the cloud does not offer the "${method}" image import method ` +
        `(it offers: ${offered.length ? offered.join(", ") : "none, interoperable import is off"})`,
    );
    this.method = method;
    this.offered = offered;
  }
}

/** Glance ran the import and it failed; the message carries Glance's task message. */
export class ImportFailedError extends OpenStackError {
  override readonly code = "EIMPORT";
}

/** The import methods the cloud offers (`GET /v2/info/import`); empty when import is off or unknown. */
export async function importMethods(glance: GlanceClient): Promise<string[]> {
  try {
    const body = (await glance.service.json({
      method: "GET",
      path: "/v2/info/import",
      callName: "GET /v2/info/import",
      expect: [200],
    })) as { "import-methods"?: { value?: unknown } } | undefined;
    const value = body?.["import-methods"]?.value;
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch (e) {
    if (e instanceof OpenStackError && e.status === 404) return [];
    throw e;
  }
}

/** Throws `ImportMethodUnavailableError` unless the cloud advertises `method`. */
export async function requireImportMethod(glance: GlanceClient, method: ImportMethodName): Promise<void> {
  const offered = await importMethods(glance);
  if (!offered.includes(method)) throw new ImportMethodUnavailableError(glance.cloud, method, offered);
}

/** The body of `POST /v2/images/{id}/import` for a source, as the Image API reference documents it. */
export function importRequestBody(source: ImportSource): { method: Record<string, string> } {
  switch (source.method) {
    case "glance-direct":
      return { method: { name: "glance-direct" } };
    case "web-download":
      return { method: { name: "web-download", uri: source.uri } };
    case "glance-download":
      return {
        method: {
          name: "glance-download",
          glance_image_id: source.imageId,
          glance_region: source.region,
          glance_service_interface: source.serviceInterface ?? "public",
        },
      };
  }
}

/**
 * Creates an image from `req` and has Glance import it from `source`, waiting for `active`; then checks the
 * size and hash against what is known (the bytes we staged, or `options.expect`). The record is deleted if
 * anything fails (except a cancellation the caller took ownership of through `onCreated`).
 */
export async function importImage(
  glance: GlanceClient,
  req: CreateImageRequest,
  source: ImportSource,
  options: ImportOptions = {},
): Promise<GlanceImage> {
  validateSource(glance, source, options);
  await requireImportMethod(glance, source.method);
  const record = await glance.createImage(req);
  try {
    await options.onCreated?.(record.id);
    let staged: { bytes: number; sha512: string } | undefined;
    if (source.method === "glance-direct") {
      staged = await glance.uploadImageData(
        record.id,
        options.data!,
        { size: options.size, onProgress: options.onProgress, signal: options.signal },
        "stage",
      );
    }
    const tasksBefore = await listImportTasks(glance, record.id);
    await glance.service.send({
      method: "POST",
      path: `/v2/images/${encodeURIComponent(record.id)}/import`,
      callName: "POST /v2/images/{id}/import",
      json: importRequestBody(source),
      // Asking twice would start a second task (or be refused as a conflict): never retried.
      retryable: false,
      signal: options.signal,
      expect: [202],
    });
    const expectedSize = options.expect?.size ?? staged?.bytes;
    const active = await waitForImport(glance, record.id, source, {
      knownTaskIds: new Set((tasksBefore ?? []).map((t) => t.id)),
      timeoutMs: options.timeoutMs ?? 10 * 60_000 + Math.ceil((expectedSize ?? 0) / (100 * 2 ** 20)) * 60_000,
      intervalMs: options.intervalMs,
      signal: options.signal,
      onProgress: source.method === "glance-direct" ? undefined : options.onProgress,
      total: expectedSize,
    });
    verifyImported(glance, active, req, source, staged, options);
    return active;
  } catch (e) {
    if (!(options.signal?.aborted && options.onCreated)) {
      await glance.deleteImage(record.id, { ignoreMissing: true }).catch((cleanupError: unknown) => {
        (e as { cleanupError?: unknown }).cleanupError = cleanupError;
      });
    }
    throw e;
  }
}

/** Checks made before anything is created: a clear error instead of a record Glance will refuse to fill. */
function validateSource(glance: GlanceClient, source: ImportSource, options: ImportOptions): void {
  const call = { cloud: glance.cloud, call: `glance ${source.method} import` };
  if (source.method === "glance-direct" && !options.data) {
    throw new OpenStackError(call, "glance-direct needs the data to stage");
  }
  if (source.method !== "glance-direct" && options.data) {
    throw new OpenStackError(call, `${source.method} takes no data from us: Glance fetches it itself`);
  }
  if (source.method === "web-download") {
    let url: URL;
    try {
      url = new URL(source.uri);
    } catch {
      throw new OpenStackError(call, `"${redactUrl(source.uri)}" is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new OpenStackError(call, `web-download fetches http(s) URLs only, not ${url.protocol}`);
    }
  }
  if (
    source.method === "glance-download" &&
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(source.imageId)
  ) {
    throw new OpenStackError(call, `glance-download needs the source image's id (a UUID), not "${source.imageId}"`);
  }
}

function verifyImported(
  glance: GlanceClient,
  active: GlanceImage,
  req: CreateImageRequest,
  source: ImportSource,
  staged: { bytes: number; sha512: string } | undefined,
  options: ImportOptions,
): void {
  const call = { cloud: glance.cloud, call: `glance ${source.method} import of image ${active.id}` };
  // An import plugin may convert the data (image_conversion changes the disk format): then the stored bytes
  // legitimately differ from those staged, and only what the caller expects of the result is checked.
  const convertedByCloud = source.method !== "glance-download" && active.disk_format !== req.diskFormat;
  const size = options.expect?.size ?? (convertedByCloud ? undefined : staged?.bytes);
  if (size !== undefined && active.size !== size) {
    throw new ImageVerificationError(call, `Glance stored ${active.size} bytes, ${size} were expected`);
  }
  const hash =
    options.expect?.hash ?? (staged && !convertedByCloud ? { algorithm: "sha512", value: staged.sha512 } : undefined);
  if (!hash) return;
  const stored =
    active.os_hash_algo === hash.algorithm
      ? active.os_hash_value
      : hash.algorithm === "md5"
        ? active.checksum
        : undefined;
  if (stored && stored.toLowerCase() !== hash.value.toLowerCase()) {
    throw new ImageVerificationError(
      call,
      `Glance's ${hash.algorithm} of the stored image differs from the expected one`,
    );
  }
}

export interface ImportTask {
  readonly id: string;
  readonly status: string;
  readonly message?: string;
  readonly created_at?: string;
}

/** The image's import tasks (API ≥ 2.12); undefined when the cloud cannot tell. */
export async function listImportTasks(glance: GlanceClient, imageId: string): Promise<ImportTask[] | undefined> {
  try {
    const body = (await glance.service.json({
      method: "GET",
      path: `/v2/images/${encodeURIComponent(imageId)}/tasks`,
      callName: "GET /v2/images/{id}/tasks",
      expect: [200],
    })) as { tasks?: unknown } | undefined;
    if (!Array.isArray(body?.tasks)) return undefined;
    return body.tasks.filter(
      (t): t is ImportTask =>
        typeof t === "object" && t !== null && typeof t.id === "string" && typeof t.status === "string",
    );
  } catch (e) {
    // 404: an older Glance without the call; 403: a policy that hides tasks. Fall back on the image status.
    if (e instanceof OpenStackError && (e.status === 404 || e.status === 403)) return undefined;
    throw e;
  }
}

interface ImportWait {
  readonly knownTaskIds: ReadonlySet<string>;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: TransferProgress) => void;
  readonly total?: number;
}

const DEAD_STATUSES = new Set(["killed", "deleted", "pending_delete", "deactivated"]);

/**
 * Polls until the image is active. Failure shows as our task in `failure` (the image goes back to `queued`);
 * without the tasks call, as the image back in `queued` after it was `importing`.
 */
async function waitForImport(
  glance: GlanceClient,
  id: string,
  source: ImportSource,
  wait: ImportWait,
): Promise<GlanceImage> {
  const call = { cloud: glance.cloud, call: `glance ${source.method} import of image ${id}` };
  const deadline = Date.now() + wait.timeoutMs;
  let interval = wait.intervalMs ?? 500;
  let sawImporting = false;
  let tasksKnown = true;
  let lastCopied = -1;
  for (;;) {
    const image = await glance.getImage(id);
    if (image.status === "active") return image;
    if (DEAD_STATUSES.has(image.status)) throw new WaitError(call, `image is ${image.status}`);
    if (image.status === "importing") sawImporting = true;
    const tasks = tasksKnown ? await listImportTasks(glance, id) : undefined;
    if (tasks === undefined) tasksKnown = false;
    const ours = tasks?.filter((t) => !wait.knownTaskIds.has(t.id)).at(-1);
    if (ours?.status === "failure") {
      throw new ImportFailedError(call, await failureDetail(source, ours));
    }
    if (ours?.status === "success") {
      // The task ends a moment before the record says active; one more look settles it.
      const again = await glance.getImage(id);
      if (again.status === "active") return again;
    }
    const copied = /Copied (\d+) MiB/.exec(ours?.message ?? "");
    if (copied && wait.onProgress) {
      const bytes = Number(copied[1]) * 2 ** 20;
      if (bytes !== lastCopied) wait.onProgress({ bytes, total: wait.total });
      lastCopied = bytes;
    }
    if (!tasksKnown && sawImporting && image.status === "queued") {
      const failed = typeof image.os_glance_failed_import === "string" ? image.os_glance_failed_import : "";
      throw new ImportFailedError(
        call,
        `the import failed: the image went back to queued${failed ? ` (failed stores: ${failed})` : ""}`,
      );
    }
    if (Date.now() >= deadline) {
      throw new WaitError(call, `still ${image.status} after ${Math.round(wait.timeoutMs / 1000)} s`);
    }
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), wait.signal);
    interval = Math.min(interval * 1.5, 5000);
  }
}

/**
 * Glance's task message is often just "Task failed due to Internal Error". For web-download, what the URL
 * answers from this machine is added, since the usual cause is a URL that does not serve the image.
 */
async function failureDetail(source: ImportSource, task: ImportTask): Promise<string> {
  const glanceSays = `Glance's task ${task.id} failed: "${task.message || "no message"}"`;
  if (source.method === "web-download") {
    return `${glanceSays}; Glance could not fetch ${redactUrl(source.uri)}${await probeUrl(source.uri)}`;
  }
  if (source.method === "glance-download") {
    return (
      `${glanceSays}; Glance could not copy image ${source.imageId} from region ${source.region} ` +
      "(is it active and readable with this project's token, and may this Glance reach the other one?)"
    );
  }
  return glanceSays;
}

/** " (from this machine it answers HTTP 404)" or "" when it cannot be reached from here either. */
async function probeUrl(uri: string): Promise<string> {
  // A URL with credentials is not fetched again from here (fetch refuses them in the URL anyway).
  if (redactUrl(uri) !== uri) return "";
  try {
    const r = await fetch(uri, { method: "HEAD", redirect: "follow", signal: AbortSignal.timeout(5000) });
    await r.body?.cancel();
    return ` (from this machine it answers HTTP ${r.status})`;
  } catch {
    return " (it does not answer from this machine either)";
  }
}

/** A URL for messages: user and password, if any, are hidden. */
export function redactUrl(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.username || url.password) {
      url.username = "***";
      url.password = "";
    }
    return url.toString();
  } catch {
    return uri.replace(/\/\/[^/@]*@/, "//***@");
  }
}
