/**
 * A bundle's files in a bucket under a key prefix, as euca-upload-bundle lays them out: `PREFIX/NAME` for each
 * of the manifest and its parts (the prefix may be empty). Each file is one PutObject, so a part is visible
 * under its name only once all of it is stored; the bucket is made on the first put, with the store's canned
 * ACL (Eucalyptus wants aws-exec-read on bundle buckets and parts).
 */
import type { BundleStore } from "../../formats/bundle/bundle-store.js";
import { S3Connection } from "./s3-connection.js";
import { ensureBucket, checkBucketName } from "./s3-bucket.js";
import { deleteObject, getObject, headObject, putObject } from "./s3-objects.js";
import { UsageError } from "../../util/errors.js";

export class S3BundleStore implements BundleStore {
  readonly label: string;
  private readonly prefix: string;
  private bucketReady: Promise<unknown> | undefined;

  constructor(
    private readonly s3: S3Connection,
    readonly bucket: string,
    prefix = "",
  ) {
    checkBucketName(bucket);
    this.prefix = prefix.replace(/^\/+|\/+$/g, "");
    if (this.prefix.split("/").some((segment) => segment === "" || segment === "." || segment === "..")) {
      if (this.prefix !== "") throw new UsageError(`"${prefix}" is not a key prefix (empty, "." or ".." segments)`);
    }
    // Without a prefix, no trailing slash: messages join the label and a file name with one.
    this.label = this.prefix ? `s3://${bucket}/${this.prefix}` : `s3://${bucket}`;
  }

  /** The object key of a bundle file. */
  keyOf(name: string): string {
    if (!name || name.includes("/") || name === "." || name === "..") {
      throw new UsageError(`"${name}" is not a bundle file name (${this.label})`);
    }
    return this.prefix ? `${this.prefix}/${name}` : name;
  }

  async put(name: string, data: Uint8Array, signal?: AbortSignal): Promise<void> {
    const key = this.keyOf(name);
    this.bucketReady ??= ensureBucket(this.s3, this.bucket, signal).catch((e: unknown) => {
      this.bucketReady = undefined; // a later put tries again
      throw e;
    });
    await this.bucketReady;
    await putObject(this.s3, this.bucket, key, data, signal);
  }

  get(name: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
    return getObject(this.s3, this.bucket, this.keyOf(name), maxBytes, signal);
  }

  async stat(name: string, signal?: AbortSignal): Promise<{ readonly size: number } | undefined> {
    const head = await headObject(this.s3, this.bucket, this.keyOf(name), signal);
    return head ? { size: head.size } : undefined;
  }

  delete(name: string, signal?: AbortSignal): Promise<void> {
    return deleteObject(this.s3, this.bucket, this.keyOf(name), signal);
  }
}
