/**
 * A bundle's image as a stream of verified bytes: each part fetched whole (a few ahead, each bounded) and its
 * SHA-1 checked before its bytes go on to the decrypter; AES-128-CBC; gunzip, bounded by the declared size (a
 * gzip bomb stops at once); the strict one-member tar reader. The stream's last chunk is held back until the
 * whole tar has been read and its SHA-1, its size and the part total agree with the manifest: whatever consumes
 * the stream (a file, the engine's converter) never sees the end of an image that fails a check, so it cannot
 * complete one.
 */
import { createDecipheriv, createHash } from "node:crypto";
import { Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { CorruptImageError } from "../errors.js";
import { VerificationError } from "../../util/errors.js";
import type { BundleStore } from "./bundle-store.js";
import type { OpenedBundleManifest } from "./open-bundle-manifest.js";
import { orderedParallel } from "./ordered-parallel.js";
import { SingleMemberTar } from "./single-member-tar.js";
import { imageTarLength } from "./image-tar-stream.js";

/** The largest part fetched: euca2ools writes 10 MiB; its hidden --part-size and our writer allow up to 64 MiB. */
const MAX_PART_BYTES = 64 * 2 ** 20;
const PARTS_AHEAD = 2;
/** Room beyond the tar of the declared size for the headers another writer may add (PAX, long names). */
const TAR_SLACK = 64 * 1024;

export interface ImageStreamOptions {
  /** Where the parts are. */
  readonly store: BundleStore;
  readonly signal?: AbortSignal;
  /** Told the size of each part as it is verified. */
  readonly onPart?: (bytes: number) => void;
}

export async function* verifiedImageBytes(
  opened: OpenedBundleManifest,
  options: ImageStreamOptions,
): AsyncGenerator<Buffer> {
  const { manifest, key, iv, where } = opened;
  const { image } = manifest;
  const { store, signal } = options;
  let partBytes = 0;

  async function* decryptedParts(): AsyncGenerator<Buffer> {
    const decipher = createDecipheriv("aes-128-cbc", key, iv);
    const fetch = async (index: number) => {
      const part = image.parts[index]!;
      const data = await store.get(part.filename, Math.min(MAX_PART_BYTES, image.bundledSize), signal);
      return { part, data };
    };
    for await (const { part, data } of orderedParallel(image.parts.keys(), fetch, PARTS_AHEAD)) {
      partBytes += data.length;
      if (partBytes > image.bundledSize) {
        throw new CorruptImageError(`${where}: the parts hold more than the manifest's ${image.bundledSize} bytes`);
      }
      if (createHash("sha1").update(data).digest("hex") !== part.digest) {
        throw new VerificationError(`${where}: part ${part.filename} does not match its digest (altered or truncated)`);
      }
      options.onPart?.(data.length);
      yield decipher.update(data);
    }
    if (partBytes !== image.bundledSize) {
      throw new CorruptImageError(
        `${where}: the parts hold ${partBytes} bytes, the manifest says ${image.bundledSize}`,
      );
    }
    try {
      yield decipher.final();
    } catch (e) {
      throw new CorruptImageError(`${where}: the decrypted bundle does not end with valid padding`, { cause: e });
    }
  }

  const tarDigest = createHash("sha1");
  const tar = new SingleMemberTar(where, image.size);
  const maxTarBytes = imageTarLength(image.size) + TAR_SLACK;
  let tarBytes = 0;
  let imageBytes = 0;
  let held: Buffer | undefined;
  // pipeline, not pipe: a part's failure must end the gunzip stream with that error, which the loop then throws.
  const inflated = pipeline(Readable.from(decryptedParts()), createGunzip({ chunkSize: 2 ** 20 }), () => undefined);
  try {
    for await (const chunk of inflated as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      tarBytes += chunk.length;
      if (tarBytes > maxTarBytes) {
        throw new CorruptImageError(`${where}: the bundle inflates past the ${image.size} bytes its manifest declares`);
      }
      tarDigest.update(chunk);
      for (const data of tar.write(chunk)) {
        if (held) yield held;
        // zlib never writes again into a buffer it has emitted: holding one back needs no copy.
        held = data;
        imageBytes += data.length;
      }
    }
  } catch (e) {
    throw e instanceof Error && "code" in e && String(e.code).startsWith("Z_")
      ? new CorruptImageError(`${where}: the decrypted bundle is not valid gzip (${e.message})`, { cause: e })
      : e;
  } finally {
    inflated.destroy();
  }
  tar.end();
  const digest = tarDigest.digest("hex");
  if (digest !== image.digest) {
    throw new VerificationError(`${where}: the image's digest ${digest} is not the manifest's ${image.digest}`);
  }
  if (tar.size !== image.size || imageBytes !== image.size) {
    throw new CorruptImageError(`${where}: the image is ${imageBytes} bytes, the manifest says ${image.size}`);
  }
  if (held) yield held;
}
