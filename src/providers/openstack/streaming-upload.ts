/**
 * Sends image data to Glance (`PUT /v2/images/{id}/file`, or `/stage` for glance-direct) as one streamed
 * request whose memory stays bounded whatever the image's size. Node's fetch (undici) was measured holding a
 * whole 1 GiB image in memory when given a streamed body; node:http driven by `stream.pipeline` writes a
 * chunk only once the socket took the previous ones (backpressure), so at most a few chunks are in flight.
 *
 * What `ServiceClient.send` gives other calls is kept: the endpoint from the catalog, the session's token
 * (renewed by the session as for any call), errors naming the cloud, the call and the HTTP status (never the
 * token), the abort signal. A streamed body can be sent only once, so nothing here is retried and a 401 is
 * not re-authenticated; the caller cleans up. If the source fails, the request is destroyed rather than ended:
 * an ended chunked body would be a complete (truncated) image as far as Glance can tell.
 *
 * The connection comes from the cloud's CloudNetwork, as for every other request: its CA, client certificate,
 * proxy and connect timeout; no byte moving either way for its idle timeout (`api_timeout`) ends the upload.
 */
import { createHash, type Hash } from "node:crypto";
import { request as httpRequest, type IncomingMessage, type ClientRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { OpenStackError } from "./errors.js";
import { serviceMessage, type ServiceClient } from "./service-client.js";

export interface StreamedUpload {
  /** Path below the endpoint, ids filled in; `callName` is its template, e.g. "PUT /v2/images/{id}/file". */
  readonly path: string;
  readonly callName: string;
  readonly data: AsyncIterable<Uint8Array>;
  /** The size in bytes, when known: sent as x-openstack-image-size, so Glance refuses a longer body. */
  readonly size?: number;
  readonly onProgress?: (p: { bytes: number; total?: number }) => void;
  readonly signal?: AbortSignal;
  /** Also hash what is sent (Glance's default multihash), so the stored image can be checked end to end. */
  readonly sha512?: boolean;
  /** Statuses that are a success (Glance answers 204 to both PUTs). */
  readonly expect?: readonly number[];
}

export interface StreamedUploadResult {
  readonly bytes: number;
  /** Present when `sha512` was asked. */
  readonly sha512?: string;
}

export async function uploadStream(service: ServiceClient, upload: StreamedUpload): Promise<StreamedUploadResult> {
  const cloud = service.session.cloud;
  const call = service.callLabel({ method: "PUT", path: upload.path, callName: upload.callName });
  upload.signal?.throwIfAborted();
  const token = await service.session.token();
  const url = new URL((await service.baseUrl()) + upload.path);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "x-auth-token": token,
  };
  if (upload.size !== undefined) headers["x-openstack-image-size"] = String(upload.size);

  let bytes = 0;
  const hasher: Hash | undefined = upload.sha512 ? createHash("sha512") : undefined;
  let sourceError: unknown;
  const source = async function* () {
    try {
      for await (const chunk of upload.data) {
        bytes += chunk.length;
        hasher?.update(chunk);
        upload.onProgress?.({ bytes, total: upload.size });
        yield chunk;
      }
    } catch (e) {
      sourceError = e;
      throw e;
    }
  };

  // Stops the pipeline (which destroys the request, so Glance never sees a clean end of body) when Glance
  // answers an error before the body is complete: it stopped reading. The caller's signal destroys it too.
  const stop = new AbortController();
  const signal = upload.signal ? AbortSignal.any([upload.signal, stop.signal]) : stop.signal;
  const expect = upload.expect ?? [204];
  const network = service.session.network;
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const req: ClientRequest = send(url, {
    method: "PUT",
    headers,
    signal: upload.signal,
    createConnection: network.createConnection(url) as never,
  });
  const idleMs = network.idleTimeoutMs;
  // The code undici gives its own idle timeout, so that the message names the setting the same way.
  req.setTimeout(idleMs, () =>
    req.destroy(Object.assign(new Error(`nothing moved for ${idleMs / 1000} s`), { code: "UND_ERR_BODY_TIMEOUT" })),
  );
  let refused: Promise<{ status: number; text: string }> | undefined;
  const reply = new Promise<IncomingMessage>((resolve, reject) => {
    req.once("response", (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (!req.writableFinished && !expect.includes(status)) {
        // Glance refused mid-body: read its (short) message, then stop sending.
        refused = readText(res).then((text) => {
          stop.abort(new Error("Glance answered before the data was sent"));
          return { status, text };
        });
      }
      resolve(res);
    });
    req.on("error", reject); // `on`, not `once`: a second error after the first must not go unhandled
    req.once("close", () => reject(new Error("the connection closed without a reply")));
  });
  reply.catch(() => undefined); // awaited below; a rejection after the pipeline failed is not unhandled

  let sendError: unknown;
  try {
    await pipeline(source(), req, { signal });
  } catch (e) {
    sendError = e;
  }
  if (sourceError !== undefined) {
    throw new OpenStackError(
      { cloud, call },
      `reading the data to upload failed after ${bytes} bytes: ${(sourceError as Error).message ?? sourceError}`,
      { cause: sourceError },
    );
  }
  if (upload.signal?.aborted) throw upload.signal.reason;
  if (refused) {
    const { status, text } = await refused;
    throw new OpenStackError({ cloud, call, status }, serviceMessage(text));
  }
  let res: IncomingMessage;
  try {
    if (sendError !== undefined) throw sendError;
    res = await reply;
  } catch (e) {
    if (upload.signal?.aborted) throw upload.signal.reason;
    throw new OpenStackError({ cloud, call }, `no reply: ${network.describeFailure(e, url)}`, { cause: e });
  }
  const status = res.statusCode ?? 0;
  const text = await readText(res);
  if (!expect.includes(status)) {
    throw new OpenStackError({ cloud, call, status }, serviceMessage(text));
  }
  return { bytes, ...(hasher ? { sha512: hasher.digest("hex") } : {}) };
}

/** The reply's body as text (Glance's are small); "" when it cannot be read. */
async function readText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      // An error page is a few hundred bytes; never hold more than 64 KiB of whatever came instead.
      if (length < 65_536) parts.push(chunk);
      length += chunk.length;
    }
  } catch {
    // a reply cut short: keep what came
  }
  return Buffer.concat(parts).toString("utf8").slice(0, 65_536);
}
