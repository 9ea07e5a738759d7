/**
 * The images of an EC2-family cloud whose bytes are an S3 bundle — Eucalyptus' instance-store EMIs, EKIs and
 * ERIs, AWS's instance-store AMIs — read and removed the same way for both stores: the bundle the image's
 * location names (BUCKET/PREFIX.manifest.xml), its sizes from the manifest, its bytes with the manifest's
 * signature verified and its AES key unwrapped first (formats/bundle/open-bundle-manifest.ts), every part
 * checked against its digest (bundle-image-stream.ts) and kept for a resumed download when the caller gives a
 * part cache, and its files removed with the image. Which keys open a bundle, and what a user whose key does
 * not should be told, is each cloud's own: the provider gives both.
 */
import type { KeyObject } from "node:crypto";
import type { DownloadOptions } from "../provider.js";
import { ChromogenicError, VerificationError } from "../../util/errors.js";
import { openBundleManifest, type OpenedBundleManifest } from "../../formats/bundle/open-bundle-manifest.js";
import { verifiedImageBytes } from "../../formats/bundle/bundle-image-stream.js";
import { PartCachingStore } from "../../formats/bundle/part-caching-store.js";
import { MAX_MANIFEST_BYTES, parseBundleManifest } from "../../formats/bundle/manifest-parser.js";
import type { Ec2Image } from "./ec2-records.js";
import type { S3Connection } from "./s3-connection.js";
import { S3BundleStore } from "./s3-bundle-store.js";
import { listObjects } from "./s3-listing.js";

/** What opens a bundle: a private key its AES key is wrapped for, and who may have signed its manifest. */
export interface BundleReadingKeys {
  readonly privateKey: KeyObject;
  /** Who may have signed the manifest (any one of them); without it, the public half of `privateKey`. */
  readonly userCertificate?: readonly KeyObject[];
  /** The manifest is taken without checking its signature (an administrator's explicit choice, warned). */
  readonly signatureUnchecked?: boolean;
}

export interface BundleImagesOptions {
  /** The store's label, for messages. */
  readonly label: string;
  /** The cloud's S3, asked for only when a bundle is touched (listing images needs none). */
  readonly s3: () => S3Connection;
  /** The keys, read when a bundle is first opened (a missing one is named then, not when the store is made). */
  readonly readingKeys: () => Promise<BundleReadingKeys>;
  /** A refused signature or key, told in the cloud's own terms (which key, set how); as it is when absent. */
  readonly explainRefusal?: (e: VerificationError) => VerificationError;
}

/** A bundle's image size, and its bundled (compressed, encrypted) size: what a part cache holds at most. */
export interface BundleSizes {
  readonly size: number;
  readonly bundledSize: number;
}

/** Whether an image's bytes are a bundle: not EBS-backed, and its location names one. */
export function isBundleImage(image: Ec2Image): boolean {
  return image.rootDeviceType !== "ebs" && !!image.location;
}

/** "bucket/key/of/x.manifest.xml" → the bucket, the key's folder and the manifest's file name. */
export function splitManifestLocation(location: string): { bucket: string; folder: string; manifest: string } {
  const slash = location.indexOf("/");
  const bucket = slash < 0 ? "" : location.slice(0, slash);
  const key = slash < 0 ? "" : location.slice(slash + 1);
  const last = key.lastIndexOf("/");
  return { bucket, folder: last < 0 ? "" : key.slice(0, last), manifest: key.slice(last + 1) };
}

export class BundleImages {
  constructor(private readonly options: BundleImagesOptions) {}

  /** The store holding `image`'s bundle and its manifest's name there. */
  bundleOf(image: Ec2Image): { store: S3BundleStore; manifest: string } {
    const { bucket, folder, manifest } = splitManifestLocation(image.location ?? "");
    if (!bucket || !manifest.endsWith(".manifest.xml")) {
      throw new ChromogenicError(
        `${this.options.label}: image ${image.id}'s location "${image.location}" is not BUCKET/PREFIX.manifest.xml`,
        "ECLOUD",
      );
    }
    return { store: new S3BundleStore(this.options.s3(), bucket, folder), manifest };
  }

  /** The sizes the bundle's manifest declares (the manifest is small; its signature is checked on download). */
  async sizes(image: Ec2Image, signal?: AbortSignal): Promise<BundleSizes> {
    const { store, manifest } = this.bundleOf(image);
    const bytes = await store.get(manifest, MAX_MANIFEST_BYTES, signal);
    const { size, bundledSize } = parseBundleManifest(bytes, `${store.label}/${manifest}`).image;
    return { size, bundledSize };
  }

  /**
   * The image's bytes, verified as they pass. A bundle cannot be entered in the middle (gzip): a resumed
   * download (`offset`) reads from the start and skips, taking the parts an earlier run kept in the part cache
   * from there, and only the others from the bucket.
   */
  async *read(image: Ec2Image, options: DownloadOptions = {}): AsyncGenerator<Uint8Array> {
    const { store, manifest } = this.bundleOf(image);
    const opened = await this.open(image, store, manifest, options.signal);
    const total = opened.manifest.image.size;
    const parts = options.partCache ? await PartCachingStore.open(store, opened.manifest, options.partCache) : store;
    let skip = options.offset ?? 0;
    let delivered = 0;
    for await (const chunk of verifiedImageBytes(opened, { store: parts, signal: options.signal })) {
      let data: Uint8Array = chunk;
      if (skip > 0) {
        const n = Math.min(skip, data.byteLength);
        skip -= n;
        data = data.subarray(n);
        if (data.byteLength === 0) continue;
      }
      delivered += data.byteLength;
      options.onProgress?.((options.offset ?? 0) + delivered, total);
      yield data;
    }
  }

  private async open(
    image: Ec2Image,
    store: S3BundleStore,
    manifestName: string,
    signal?: AbortSignal,
  ): Promise<OpenedBundleManifest> {
    const keys = await this.options.readingKeys();
    if (keys.signatureUnchecked) {
      process.emitWarning(
        `${this.options.label}: ${image.id}'s manifest is taken WITHOUT checking its signature ` +
          "(--skip-bundle-signature-check): whoever can write to its bucket could have replaced the image",
      );
    }
    try {
      return await openBundleManifest({ store, manifestName, ...keys, signal });
    } catch (e) {
      const explain = this.options.explainRefusal;
      throw e instanceof VerificationError && explain ? explain(e) : e;
    }
  }

  /** Removes the image's bundle: the parts its manifest lists (or, without one, those stored under its prefix). */
  async remove(image: Ec2Image): Promise<void> {
    const { store, manifest } = this.bundleOf(image);
    const bytes = await store.get(manifest, MAX_MANIFEST_BYTES).catch(() => undefined);
    const parts = bytes
      ? parseBundleManifest(bytes, `${store.label}/${manifest}`).image.parts.map((p) => p.filename)
      : await this.storedParts(store, manifest.slice(0, -".manifest.xml".length));
    await this.deleteBundle(store, manifest, parts);
  }

  /**
   * The parts stored for the bundle `prefix` in `store`, found by the names a manifest gives them (PREFIX.part.NN):
   * those of a bundle whose manifest is gone, or of an upload that failed before writing one.
   */
  async storedParts(store: S3BundleStore, prefix: string): Promise<string[]> {
    const partsPrefix = `${prefix}.part.`;
    const keyPrefix = store.keyOf(partsPrefix);
    const parts: string[] = [];
    // ListObjects (V1): Eucalyptus' object storage gateway has no V2. A bundle has few parts: a few pages at most.
    for await (const o of listObjects(this.options.s3(), store.bucket, keyPrefix, { api: "v1", maxPages: 100 })) {
      // Only PREFIX.part.NN, named relative to the bundle's folder as the store names objects.
      if (/^\d+$/.test(o.key.slice(keyPrefix.length))) parts.push(o.key.slice(keyPrefix.length - partsPrefix.length));
    }
    return parts;
  }

  /** Removes the parts, then the manifest: a bundle that still has its manifest stays whole. */
  async deleteBundle(store: S3BundleStore, manifest: string, parts: readonly string[]): Promise<void> {
    await Promise.allSettled(parts.map((p) => store.delete(p)));
    await store.delete(manifest).catch(() => undefined);
  }
}
