/**
 * Downloads an image's data as a stream of chunks, resuming with an HTTP Range request after a dropped
 * connection, and verifying the whole against Glance's recorded hash (os_hash_value, else checksum) and
 * size as the bytes pass. The stream throws `ImageVerificationError` at its end on any mismatch, so a
 * consumer that writes to a temporary file commits only verified data. A download that starts at an offset (a
 * resumed one) or is asked not to verify (bytes the caller checks another way) is checked for size only: a
 * hash needs every byte.
 */
import type { GlanceClient, TransferProgress } from "./glance-client.js";
import type { GlanceImage } from "./glance-image.js";
import { expectedHash, createImageHasher } from "./image-hash.js";
import { describeCause, ImageVerificationError, OpenStackError } from "./errors.js";
import { sleep } from "./keystone-session.js";
import { DEFAULT_RETRY_POLICY, retryDelayMs } from "./retry-policy.js";

export interface DownloadOptions {
  readonly onProgress?: (p: TransferProgress & { readonly resumes: number }) => void;
  readonly signal?: AbortSignal;
  /** How many times a dropped connection is resumed before giving up (default 8). */
  readonly maxResumes?: number;
  /** Refuse to download an image without a recorded hash (default true; moot when not verifying). */
  readonly requireHash?: boolean;
  /** Start at this byte (default 0); the hash is then not checked. */
  readonly offset?: number;
  /** Check the data against Glance's recorded hash (default true). */
  readonly verify?: boolean;
}

export async function* downloadImage(
  glance: GlanceClient,
  imageOrId: GlanceImage | string,
  options: DownloadOptions = {},
): AsyncGenerator<Uint8Array> {
  const image = typeof imageOrId === "string" ? await glance.getImage(imageOrId) : imageOrId;
  const call = `glance download image ${image.id}`;
  const cloud = glance.cloud;
  if (image.status !== "active") {
    throw new OpenStackError({ cloud, call }, `image is ${image.status}, not active: it has no data to download`);
  }
  const start = options.offset ?? 0;
  const verify = options.verify !== false && start === 0;
  const expected = verify ? expectedHash(image) : undefined;
  if (verify && !expected && options.requireHash !== false) {
    throw new ImageVerificationError(
      { cloud, call },
      "Glance recorded neither os_hash_value nor checksum for this image",
    );
  }
  const hasher = expected ? createImageHasher(expected) : undefined;
  const total = image.size ?? undefined;
  const maxResumes = options.maxResumes ?? 8;
  let offset = start;
  let resumes = 0;
  for (;;) {
    const response = await glance.service.send({
      method: "GET",
      path: `/v2/images/${encodeURIComponent(image.id)}/file`,
      callName: "GET /v2/images/{id}/file",
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      expect: offset > 0 ? [200, 206] : [200],
      signal: options.signal,
    });
    // A server that ignores Range sends everything again: skip what we already have.
    let skip = offset > 0 && response.status === 200 ? offset : 0;
    try {
      if (!response.body) throw new OpenStackError({ cloud, call, status: response.status }, "the reply has no body");
      for await (const chunk of response.body) {
        let piece: Uint8Array = chunk;
        if (skip > 0) {
          const n = Math.min(skip, piece.length);
          skip -= n;
          piece = piece.subarray(n);
          if (piece.length === 0) continue;
        }
        offset += piece.length;
        hasher?.update(piece);
        options.onProgress?.({ bytes: offset, total, resumes });
        yield piece;
      }
      if (total === undefined || offset >= total) break;
      // The body ended cleanly but short: a proxy closed it. Resume like after an error.
      throw new Error(`the reply ended at byte ${offset} of ${total}`);
    } catch (e) {
      if (options.signal?.aborted || e instanceof OpenStackError) throw e;
      if (resumes >= maxResumes) {
        throw new OpenStackError(
          { cloud, call },
          `the connection dropped at byte ${offset} and ${resumes} resumes did not finish it: ${describeCause(e)}`,
          { cause: e },
        );
      }
      resumes++;
      await sleep(retryDelayMs(DEFAULT_RETRY_POLICY, resumes), options.signal);
    }
  }
  if (total !== undefined && offset !== total) {
    throw new ImageVerificationError({ cloud, call }, `received ${offset} bytes, Glance records ${total}`);
  }
  if (hasher && expected) {
    const actual = hasher.digest("hex");
    if (actual !== expected.value.toLowerCase()) {
      throw new ImageVerificationError(
        { cloud, call },
        `${expected.algorithm} of the downloaded data is ${actual}, Glance records ${expected.value}`,
      );
    }
  }
}
