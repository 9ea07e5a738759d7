/**
 * Bundles an image as euca2ools' euca-bundle-image does, streaming end to end with no temporary copy: the image
 * as a one-member tar (SHA-1 of the tar stream computed as it passes) → gzip on every core → AES-128-CBC →
 * parts of 10 MiB stored through a BundleStore while later ones are made → the signed manifest, stored last, so
 * a bundle with a manifest is always complete. On failure, the parts already stored are removed.
 */
import { createCipheriv, createHash, type KeyObject } from "node:crypto";
import type { ImageSource } from "../types.js";
import type { ProgressListener } from "../../util/events.js";
import { ProgressMeter } from "../../util/progress-meter.js";
import { UsageError } from "../errors.js";
import {
  BUNDLE_PART_SIZE,
  bundleManifestName,
  bundlePartName,
  type BundleImageType,
  type BundleManifest,
  type BundlePart,
} from "./bundle-manifest.js";
import type { BundleStore } from "./bundle-store.js";
import { randomBundleSecret, signManifestText, wrapHex, type BundleSecret } from "./bundle-keys.js";
import { checkBundleFileName } from "./bundle-file-name.js";
import { signedManifestText, writeManifest } from "./manifest-writer.js";
import { DEFAULT_GZIP_LEVEL, gzipParallel } from "./parallel-gzip.js";
import { imageTarStream } from "./image-tar-stream.js";
import { PartCutter } from "./part-cutter.js";

export interface WriteBundleRequest {
  /** The image, as the engine opened it: its guest-visible bytes are what the bundle holds. */
  readonly source: ImageSource;
  /** The bundle's prefix: the manifest's image name, the tar member's name, the parts' names. */
  readonly prefix: string;
  readonly store: BundleStore;
  readonly architecture: string;
  /** The owner's account id (`-u`). */
  readonly user: string;
  readonly imageType?: BundleImageType;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly blockDeviceMappings?: readonly (readonly [string, string])[];
  readonly productCodes?: readonly string[];
  /** The user's private key (signs the manifest) and certificate, and the cloud's certificate. */
  readonly userKey: KeyObject;
  readonly userCertificate: KeyObject;
  readonly cloudCertificate: KeyObject;
  /** Fixed key and IV (euca2ools' --enc-key/--enc-iv, for reproducible tests); random when not given. */
  readonly secret?: BundleSecret;
  /** Part size; 10 MiB (euca2ools' hidden --part-size, for small multi-part fixtures). */
  readonly partSize?: number;
  readonly gzipLevel?: number;
  /**
   * Resume an interrupted run of this same bundle: parts already stored whole (same name and size) are not stored
   * again, and a failure leaves the stored parts for the next run. The bytes must be those of the earlier run, so
   * this needs the earlier run's `secret` (the stream is otherwise deterministic: same tar, same gzip members).
   */
  readonly resumable?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
}

export interface WriteBundleResult {
  readonly manifestName: string;
  readonly parts: readonly BundlePart[];
  readonly imageSize: number;
  readonly bundledSize: number;
  /** SHA-1 of the tar stream (the manifest's image digest). */
  readonly digest: string;
  readonly seconds: number;
}

/** uncompressed bytes per gzip chunk: large enough that the 32 KiB dictionary cut costs nothing, small enough to spread. */
const GZIP_CHUNK = 2 * 2 ** 20;
const PARTS_IN_FLIGHT = 2;
const BUNDLER = { name: "chromogenic", version: "0.5.0", release: "0" } as const;

export async function writeBundle(request: WriteBundleRequest): Promise<WriteBundleResult> {
  const started = performance.now();
  const { source, store, signal } = request;
  const prefix = checkBundleFileName(request.prefix, "bundle prefix");
  if (Buffer.byteLength(prefix) > 100 || /[^\x20-\x7e]/.test(prefix)) {
    throw new UsageError(`prefix "${prefix}": must be at most 100 printable ASCII characters (the tar member's name)`);
  }
  const imageType = request.imageType ?? "machine";
  checkImageType(imageType, request);
  const partSize = request.partSize ?? BUNDLE_PART_SIZE;
  if (!Number.isSafeInteger(partSize) || partSize < 1 || partSize > 64 * 2 ** 20) {
    throw new UsageError(`part size ${partSize}: must be 1 byte to 64 MiB`);
  }
  if (request.resumable && !request.secret) {
    throw new UsageError("a resumed bundle needs the AES key and IV of the run it resumes");
  }
  const secret = request.secret ?? randomBundleSecret();
  const meter = new ProgressMeter({
    phase: "convert",
    total: null,
    virtualSize: source.virtualSize,
    listener: request.onProgress,
  });
  const tarDigest = createHash("sha1");
  const cipher = createCipheriv("aes-128-cbc", Buffer.from(secret.key, "hex"), Buffer.from(secret.iv, "hex"));
  const manifestName = bundleManifestName(prefix);
  // A manifest left by an earlier bundle of this prefix would describe the parts about to be overwritten.
  // Asked first: a bucket not made yet has nothing to delete, and some stores answer a DELETE there with an error.
  if (await store.stat(manifestName, signal)) await store.delete(manifestName, signal);
  const name = (i: number) => bundlePartName(prefix, i);
  const cutter = new PartCutter(store, name, partSize, PARTS_IN_FLIGHT, signal, request.resumable);
  try {
    const tar = imageTarStream(source, {
      name: prefix,
      chunkSize: GZIP_CHUNK,
      signal,
      onChunk: (length, zero) => (zero ? meter.skip(length) : meter.advance(length)),
    });
    for await (const { plain, compressed } of gzipParallel(tar, request.gzipLevel ?? DEFAULT_GZIP_LEVEL)) {
      signal?.throwIfAborted();
      tarDigest.update(plain);
      await cutter.write(cipher.update(compressed));
    }
    await cutter.write(cipher.final());
    const parts = await cutter.finish();
    const digest = tarDigest.digest("hex");
    const unsigned = {
      machineConfiguration: {
        architecture: request.architecture,
        blockDeviceMappings: request.blockDeviceMappings ?? [],
        productCodes: request.productCodes ?? [],
        kernelId: request.kernelId,
        ramdiskId: request.ramdiskId,
      },
      image: {
        name: prefix,
        user: request.user,
        type: imageType,
        digest,
        size: source.virtualSize,
        bundledSize: cutter.totalBytes,
        ec2EncryptedKey: wrapHex(secret.key, request.cloudCertificate),
        userEncryptedKey: wrapHex(secret.key, request.userCertificate),
        ec2EncryptedIv: wrapHex(secret.iv, request.cloudCertificate),
        userEncryptedIv: wrapHex(secret.iv, request.userCertificate),
        parts,
      },
    };
    const signedText = signedManifestText(unsigned);
    const manifest: BundleManifest = {
      ...unsigned,
      bundler: BUNDLER,
      signature: signManifestText(signedText, request.userKey),
    };
    await store.put(manifestName, writeManifest(manifest, signedText), signal);
    meter.complete();
    return {
      manifestName,
      parts,
      imageSize: source.virtualSize,
      bundledSize: cutter.totalBytes,
      digest,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (e) {
    await cutter.settle();
    if (!request.resumable) await Promise.allSettled(cutter.stored.map((part) => store.delete(part)));
    throw e;
  }
}

/** euca2ools' rules: a kernel or ramdisk image names no other kernel, ramdisk or mappings. */
function checkImageType(type: BundleImageType, request: WriteBundleRequest): void {
  if (type === "machine") return;
  const own = type === "kernel" ? request.kernelId : request.ramdiskId;
  const other = type === "kernel" ? request.ramdiskId : request.kernelId;
  if ((own !== undefined && own !== "true") || other !== undefined) {
    throw new UsageError(`a ${type} image names no kernel or ramdisk (--kernel/--ramdisk, except "true" for itself)`);
  }
  if (request.blockDeviceMappings?.length) throw new UsageError(`a ${type} image has no block device mappings`);
}
