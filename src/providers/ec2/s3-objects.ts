/**
 * Whole-object calls: put a buffer, get one back within a size bound, ask for its size, delete it. These carry
 * a bundle's manifest and its parts (10 MiB each) and anything else small enough to hold in memory; large
 * objects go through s3-multipart-upload.ts.
 *
 * Integrity: a put carries Content-MD5, which the server checks before it stores anything, and the ETag it
 * returns must be that MD5 (a single PUT's ETag is the MD5 of its bytes on every S3 server). A get refuses an
 * object larger than the caller's bound before reading a byte of it, and stops reading if more bytes come than
 * the server announced.
 */
import { createHash } from "node:crypto";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type GetObjectCommandOutput,
  type HeadObjectCommandOutput,
  type PutObjectCommandOutput,
} from "@aws-sdk/client-s3";
import { aclHints, S3Connection } from "./s3-connection.js";
import { AwsServiceError } from "./aws-errors.js";
import { ChromogenicError, TransferError, VerificationError } from "../../util/errors.js";

export async function putObject(
  s3: S3Connection,
  bucket: string,
  key: string,
  data: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  const md5 = createHash("md5").update(data).digest();
  const acl = s3.settings.cannedAcl;
  const subject = S3Connection.location(bucket, key);
  const out = await s3.send<PutObjectCommandOutput>(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: data,
      ContentLength: data.byteLength,
      ContentMD5: md5.toString("base64"),
      ...(acl ? { ACL: acl as never } : {}),
    }),
    { call: "PutObject", subject, hints: aclHints(acl) },
    signal,
  );
  const etag = out.ETag?.replace(/"/g, "").toLowerCase();
  if (etag && /^[0-9a-f]{32}$/.test(etag) && etag !== md5.toString("hex")) {
    throw new VerificationError(
      `S3 at ${s3.settings.endpoint} stored ${subject} with ETag ${etag}, not the MD5 of the bytes sent ` +
        `(${md5.toString("hex")})`,
    );
  }
}

/** The object's bytes; one larger than `maxBytes` is refused before it is read. */
export async function getObject(
  s3: S3Connection,
  bucket: string,
  key: string,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const subject = S3Connection.location(bucket, key);
  const out = await s3.send<GetObjectCommandOutput>(
    new GetObjectCommand({ Bucket: bucket, Key: key }),
    { call: "GetObject", subject },
    signal,
  );
  const body = out.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
  const announced = out.ContentLength;
  if (announced !== undefined && announced > maxBytes) {
    body?.destroy?.();
    throw new ChromogenicError(
      `${subject} is ${announced} bytes, more than the ${maxBytes} allowed for it: not read`,
      "ECORRUPT",
    );
  }
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for await (const chunk of body) {
      length += chunk.byteLength;
      if (length > maxBytes || (announced !== undefined && length > announced)) {
        body.destroy?.();
        throw new ChromogenicError(
          `${subject}: the server sent more than ${announced !== undefined && announced < maxBytes ? `the ${announced} bytes it announced` : `the ${maxBytes} bytes allowed`}: not kept`,
          "ECORRUPT",
        );
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof ChromogenicError) throw e;
    throw s3.error(e, { call: "GetObject (reading the body)", subject }, signal);
  }
  if (announced !== undefined && length !== announced) {
    throw new TransferError(`${subject}: ${length} of the ${announced} bytes announced arrived`);
  }
  return Buffer.concat(chunks, length);
}

export interface S3ObjectHead {
  readonly size: number;
  /** Without quotes; an MD5 for a single PUT, "<md5>-<parts>" for a multipart upload. */
  readonly etag: string | undefined;
}

/** The object's size and ETag, or undefined when it does not exist. */
export async function headObject(
  s3: S3Connection,
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<S3ObjectHead | undefined> {
  try {
    const out = await s3.send<HeadObjectCommandOutput>(
      new HeadObjectCommand({ Bucket: bucket, Key: key }),
      { call: "HeadObject", subject: S3Connection.location(bucket, key) },
      signal,
    );
    return { size: out.ContentLength ?? 0, etag: out.ETag?.replace(/"/g, "") };
  } catch (e) {
    if (e instanceof AwsServiceError && e.status === 404) return undefined;
    throw e;
  }
}

/** Removes the object; one that does not exist, or whose bucket does not, is not an error (DELETE is idempotent). */
export async function deleteObject(s3: S3Connection, bucket: string, key: string, signal?: AbortSignal): Promise<void> {
  try {
    await s3.send(
      new DeleteObjectCommand({ Bucket: bucket, Key: key }),
      { call: "DeleteObject", subject: S3Connection.location(bucket, key) },
      signal,
    );
  } catch (e) {
    // Nothing there to remove: no such object, nor even its bucket.
    if (e instanceof AwsServiceError && (e.awsCode === "NoSuchKey" || e.awsCode === "NoSuchBucket")) return;
    throw e;
  }
}
