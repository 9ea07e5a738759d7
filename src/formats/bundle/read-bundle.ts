/**
 * Unbundles as euca-unbundle does, but checking what it does not: the manifest's signature is verified before
 * any part is read, and each part's SHA-1 before its bytes go on to the decrypter. Then AES-128-CBC → gunzip
 * (bounded by the declared size: a gzip bomb stops at once) → a strict one-member tar reader → the image, written
 * under a temporary name and renamed only when the tar's SHA-1 is the manifest's digest, its size the declared
 * one, and every part was used. Zero blocks are skipped rather than written, so the output is sparse.
 */
import { createDecipheriv, createHash, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { ProgressListener } from "../../util/events.js";
import { ProgressMeter } from "../../util/progress-meter.js";
import { CorruptImageError } from "../errors.js";
import { VerificationError } from "../../util/errors.js";
import type { BundleStore } from "./bundle-store.js";
import type { ParsedBundleManifest } from "./bundle-manifest.js";
import { checkBundleFileName } from "./bundle-file-name.js";
import { MAX_MANIFEST_BYTES, parseBundleManifest } from "./manifest-parser.js";
import { unwrapBundleSecret, verifyManifestText } from "./bundle-keys.js";
import { orderedParallel } from "./ordered-parallel.js";
import { SingleMemberTar } from "./single-member-tar.js";
import { imageTarLength } from "./image-tar-stream.js";

export interface ReadBundleRequest {
  /** Where the parts are. */
  readonly store: BundleStore;
  /** Where the manifest is, when not beside the parts. */
  readonly manifestStore?: BundleStore;
  readonly manifestName: string;
  /** The user's or the cloud's private key: it unwraps the AES key and IV. */
  readonly privateKey: KeyObject;
  /** Verifies the signature; without it, the public half of `privateKey` (then it must be the user's). */
  readonly userCertificate?: KeyObject;
  /** The folder the image is written into, under the manifest's image name. */
  readonly destination: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
}

export interface ReadBundleResult {
  readonly output: string;
  readonly imageSize: number;
  readonly digest: string;
  readonly parts: number;
  readonly seconds: number;
}

/** The largest part fetched: euca2ools writes 10 MiB; its hidden --part-size and our writer allow up to 64 MiB. */
const MAX_PART_BYTES = 64 * 2 ** 20;
const PARTS_AHEAD = 3;
/** Room beyond the tar of the declared size for the headers another writer may add (PAX, long names). */
const TAR_SLACK = 64 * 1024;
const SPARSE_BLOCK = 64 * 1024;

/** Reads and checks the manifest: parsed strictly, signature verified, key unwrapped. No part is read. */
export async function openBundleManifest(
  request: Pick<
    ReadBundleRequest,
    "store" | "manifestStore" | "manifestName" | "privateKey" | "userCertificate" | "signal"
  >,
): Promise<{ manifest: ParsedBundleManifest; key: Buffer; iv: Buffer; where: string }> {
  const store = request.manifestStore ?? request.store;
  const where = `${store.label}/${checkBundleFileName(request.manifestName, store.label)}`;
  const manifest = parseBundleManifest(
    await store.get(request.manifestName, MAX_MANIFEST_BYTES, request.signal),
    where,
  );
  verifyManifestText(
    manifest.signedText,
    manifest.signature,
    request.userCertificate ?? createPublicKey(request.privateKey),
    where,
  );
  const secret = unwrapBundleSecret(manifest.image, request.privateKey, where);
  return { manifest, key: Buffer.from(secret.key, "hex"), iv: Buffer.from(secret.iv, "hex"), where };
}

export async function readBundle(request: ReadBundleRequest): Promise<ReadBundleResult> {
  const started = performance.now();
  const { store, signal } = request;
  const { manifest, key, iv, where } = await openBundleManifest(request);
  const { image } = manifest;
  const output = join(request.destination, checkBundleFileName(image.name, where));
  const temporary = `${output}.${randomBytes(6).toString("hex")}.partial`;
  const meter = new ProgressMeter({ phase: "convert", total: image.bundledSize, listener: request.onProgress });
  const tarDigest = createHash("sha1");
  const tar = new SingleMemberTar(where, image.size);
  const maxTarBytes = imageTarLength(image.size) + TAR_SLACK;
  let partBytes = 0;
  let tarBytes = 0;

  async function* decryptedParts(): AsyncGenerator<Buffer> {
    const decipher = createDecipheriv("aes-128-cbc", key, iv);
    const fetch = (index: number) =>
      store.get(image.parts[index]!.filename, Math.min(MAX_PART_BYTES, image.bundledSize), signal);
    for await (const data of orderedParallel(image.parts.keys(), fetch, PARTS_AHEAD)) {
      const part = image.parts[meterParts(data.length)]!;
      const digest = createHash("sha1").update(data).digest("hex");
      if (digest !== part.digest) {
        throw new VerificationError(`${where}: part ${part.filename} does not match its digest (altered or truncated)`);
      }
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
  let partsSeen = 0;
  function meterParts(length: number): number {
    partBytes += length;
    if (partBytes > image.bundledSize) {
      throw new CorruptImageError(`${where}: the parts hold more than the manifest's ${image.bundledSize} bytes`);
    }
    meter.advance(length);
    return partsSeen++;
  }

  async function* imageBytes(inflated: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of inflated) {
      tarBytes += chunk.length;
      if (tarBytes > maxTarBytes) {
        throw new CorruptImageError(`${where}: the bundle inflates past the ${image.size} bytes its manifest declares`);
      }
      tarDigest.update(chunk);
      yield* tar.write(chunk);
    }
    tar.end();
  }

  const file = await open(temporary, "wx");
  try {
    let position = 0;
    await pipeline(
      decryptedParts(),
      createGunzip({ chunkSize: 2 ** 20 }),
      imageBytes,
      async (data: AsyncIterable<Buffer>) => {
        for await (const chunk of data) {
          await writeSparse(file, chunk, position);
          position += chunk.length;
        }
      },
      { signal },
    );
    const digest = tarDigest.digest("hex");
    if (digest !== image.digest) {
      throw new VerificationError(`${where}: the image's digest ${digest} is not the manifest's ${image.digest}`);
    }
    if (tar.size !== image.size || position !== image.size) {
      throw new CorruptImageError(`${where}: the image is ${position} bytes, the manifest says ${image.size}`);
    }
    await file.truncate(position);
    await file.sync();
    await file.close();
    await rename(temporary, output);
  } catch (e) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw e;
  }
  meter.complete();
  return {
    output,
    imageSize: image.size,
    digest: image.digest,
    parts: image.parts.length,
    seconds: (performance.now() - started) / 1000,
  };
}

const ZEROS = Buffer.alloc(SPARSE_BLOCK);

/** Writes `chunk` at `position`, leaving holes where whole aligned blocks are zero (the file is truncated to size). */
async function writeSparse(
  file: import("node:fs/promises").FileHandle,
  chunk: Buffer,
  position: number,
): Promise<void> {
  let at = 0;
  while (at < chunk.length) {
    // Up to the next block boundary of the file, so holes are aligned.
    const end = Math.min(chunk.length, at + SPARSE_BLOCK - ((position + at) % SPARSE_BLOCK));
    let runEnd = end;
    const zero = end - at === SPARSE_BLOCK && ZEROS.equals(chunk.subarray(at, end));
    if (!zero) {
      // Extend a data run over following non-zero blocks, so writes stay large.
      while (runEnd < chunk.length) {
        const next = Math.min(chunk.length, runEnd + SPARSE_BLOCK);
        if (next - runEnd === SPARSE_BLOCK && ZEROS.equals(chunk.subarray(runEnd, next))) break;
        runEnd = next;
      }
      let written = 0;
      while (written < runEnd - at) {
        const { bytesWritten } = await file.write(chunk, at + written, runEnd - at - written, position + at + written);
        written += bytesWritten;
      }
    }
    at = runEnd;
  }
}
