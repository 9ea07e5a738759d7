/**
 * Uploading a stream of unknown length as one S3 object, part by part, so that a job killed half-way resumes
 * at the part it had reached instead of starting again.
 *
 * The upload's state — its UploadId, the part size and every part stored so far with its ETag — is handed to
 * `onState` after each part (a job writes it to its journal). To resume, the same state is passed back with a
 * source that starts at `resumeOffset(state)`: the server's own list of the upload's parts is read first, and
 * only the unbroken run of parts from part 1 that the server holds with the recorded ETag and size is kept;
 * later parts (uploaded out of order before the kill) are sent again under the same numbers.
 *
 * Nothing half-written ever becomes the object: S3 shows it only once CompleteMultipartUpload succeeds, and
 * its size is checked against the bytes sent. When an upload fails, the multipart upload is aborted so its
 * parts do not linger (unless `onFailure: "keep"`, for a job that will retry); when it is cancelled through
 * the AbortSignal it is kept, resumable. `abortMultipartUpload` removes one for good.
 *
 * Why not @aws-sdk/lib-storage's Upload: it always starts a new multipart upload (it cannot continue an
 * UploadId), reports no part's ETag, and answers a cancellation before its abort of the upload has finished.
 * Each part here carries Content-MD5 and its ETag is checked to be that MD5.
 */
import { createHash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  UploadPartCommand,
  type CreateMultipartUploadCommandOutput,
  type ListPartsCommandOutput,
  type UploadPartCommandOutput,
} from "@aws-sdk/client-s3";
import { aclHints, S3Connection } from "./s3-connection.js";
import { AwsServiceError, isAbort } from "./aws-errors.js";
import { DEFAULT_MAX_PAGES, PageGuard } from "./s3-listing.js";
import { headObject } from "./s3-objects.js";
import { AbortedError, ChromogenicError, TransferError, UsageError, VerificationError } from "../../util/errors.js";

export interface UploadedPart {
  readonly partNumber: number;
  /** Without quotes: the MD5 of the part's bytes. */
  readonly etag: string;
  readonly size: number;
}

export interface MultipartUploadState {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly partSize: number;
  /** Sorted by part number; not necessarily without gaps while parts are in flight. */
  readonly parts: readonly UploadedPart[];
}

export interface MultipartUploadOptions {
  /** Bytes per part but the last: 5 MiB (S3's least) to 5 GiB; default 16 MiB. */
  readonly partSize?: number;
  /** Parts sent at once (default 4); memory is about (concurrency + 1) × partSize. */
  readonly concurrency?: number;
  /** A state recorded by an earlier run: the source must start at resumeOffset(resume). */
  readonly resume?: MultipartUploadState;
  /** Called (one call at a time, awaited) when the upload starts and after each part is stored. */
  readonly onState?: (state: MultipartUploadState) => void | Promise<void>;
  /** What to do with the multipart upload when the upload fails: abort it (default) or keep it for a retry. */
  readonly onFailure?: "abort" | "keep";
  readonly signal?: AbortSignal;
}

export const MIN_PART_SIZE = 5 * 2 ** 20;
export const MAX_PART_SIZE = 5 * 2 ** 30;
export const DEFAULT_PART_SIZE = 16 * 2 ** 20;
/** S3's limit on an upload's parts. */
export const MAX_PARTS = 10_000;

/** Where the source of a resumed upload must start: the end of the unbroken run of parts from part 1. */
export function resumeOffset(state: MultipartUploadState): number {
  return contiguousParts(state.parts).reduce((sum, p) => sum + p.size, 0);
}

function contiguousParts(parts: readonly UploadedPart[]): UploadedPart[] {
  const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
  const run: UploadedPart[] = [];
  for (const p of sorted) {
    if (p.partNumber !== run.length + 1) break;
    run.push(p);
  }
  return run;
}

/** Uploads `source` as s3://bucket/key; returns the object's size and ETag once it exists whole. */
export async function uploadMultipart(
  s3: S3Connection,
  bucket: string,
  key: string,
  source: AsyncIterable<Uint8Array>,
  options: MultipartUploadOptions = {},
): Promise<{ readonly size: number; readonly etag: string | undefined }> {
  const subject = S3Connection.location(bucket, key);
  const partSize = options.resume?.partSize ?? options.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    throw new UsageError(`multipart upload of ${subject}: a part size of ${partSize} bytes is not 5 MiB to 5 GiB`);
  }
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 4, 16));
  const signal = options.signal;
  signal?.throwIfAborted();

  let state = options.resume
    ? await resumedState(s3, bucket, key, options.resume, signal)
    : await startUpload(s3, bucket, key, partSize, signal);
  const publish = serialised(options.onState);
  await publish(state);

  // Our own controller stops the parts in flight when one fails; the caller's signal stops everything.
  const internal = new AbortController();
  const partSignal = signal ? AbortSignal.any([signal, internal.signal]) : internal.signal;
  let failure: unknown;
  const inFlight = new Set<Promise<void>>();
  let sent = resumeOffset(state);
  let nextPart = state.parts.length + 1;
  try {
    for await (const data of partsOf(source, partSize)) {
      if (failure !== undefined || signal?.aborted) break;
      if (nextPart > MAX_PARTS) {
        throw new UsageError(
          `multipart upload of ${subject}: more than ${MAX_PARTS} parts of ${partSize} bytes; use a larger part size`,
        );
      }
      const partNumber = nextPart++;
      sent += data.byteLength;
      const task = uploadPart(s3, state, partNumber, data, partSignal)
        .then(async (part) => {
          state = { ...state, parts: [...state.parts, part].sort((a, b) => a.partNumber - b.partNumber) };
          await publish(state);
        })
        .catch((e: unknown) => {
          failure ??= e;
          internal.abort();
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (signal?.aborted) throw signal.reason;
    if (failure !== undefined) throw failure;
    if (state.parts.length === 0) {
      // An empty source: S3 needs one part, and a last part may be of any size.
      const part = await uploadPart(s3, state, 1, new Uint8Array(0), signal);
      state = { ...state, parts: [part] };
      await publish(state);
    }
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: state.uploadId,
        MultipartUpload: { Parts: state.parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
      }),
      { call: "CompleteMultipartUpload", subject },
      signal,
    );
  } catch (e) {
    await Promise.allSettled(inFlight);
    if (isAbort(e, signal)) {
      throw new AbortedError(
        `multipart upload of ${subject} cancelled; upload ${state.uploadId} is kept with ${state.parts.length} ` +
          "part(s) for a resume",
      );
    }
    if (options.onFailure !== "keep") await abortMultipartUpload(s3, state).catch(() => undefined);
    throw e instanceof ChromogenicError ? e : s3.error(e, { call: "UploadPart", subject }, signal);
  }
  const head = await headObject(s3, bucket, key, signal);
  if (!head || head.size !== sent) {
    throw new VerificationError(
      `${subject}: the completed multipart upload holds ${head?.size ?? "no"} bytes, not the ${sent} sent`,
    );
  }
  return head;
}

/** Removes a multipart upload and every part stored for it; one already gone is not an error. */
export async function abortMultipartUpload(
  s3: S3Connection,
  state: Pick<MultipartUploadState, "bucket" | "key" | "uploadId">,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: state.bucket, Key: state.key, UploadId: state.uploadId }),
      {
        call: "AbortMultipartUpload",
        subject: `${S3Connection.location(state.bucket, state.key)} (upload ${state.uploadId})`,
      },
      signal,
    );
  } catch (e) {
    if (e instanceof AwsServiceError && e.awsCode === "NoSuchUpload") return;
    throw e;
  }
}

async function startUpload(
  s3: S3Connection,
  bucket: string,
  key: string,
  partSize: number,
  signal: AbortSignal | undefined,
): Promise<MultipartUploadState> {
  const acl = s3.settings.cannedAcl;
  const out = await s3.send<CreateMultipartUploadCommandOutput>(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...(acl ? { ACL: acl as never } : {}) }),
    { call: "CreateMultipartUpload", subject: S3Connection.location(bucket, key), hints: aclHints(acl) },
    signal,
  );
  if (!out.UploadId) {
    throw new ChromogenicError(
      `S3 at ${s3.settings.endpoint}: CreateMultipartUpload of ${S3Connection.location(bucket, key)} returned no UploadId`,
      "ECLOUD",
    );
  }
  return { bucket, key, uploadId: out.UploadId, partSize, parts: [] };
}

/** The recorded state cut to the unbroken run of parts the server holds as recorded. */
async function resumedState(
  s3: S3Connection,
  bucket: string,
  key: string,
  recorded: MultipartUploadState,
  signal: AbortSignal | undefined,
): Promise<MultipartUploadState> {
  const subject = S3Connection.location(bucket, key);
  if (recorded.bucket !== bucket || recorded.key !== key) {
    throw new UsageError(
      `the upload state to resume is for ${S3Connection.location(recorded.bucket, recorded.key)}, not ${subject}`,
    );
  }
  const held = new Map<number, { etag: string; size: number }>();
  const guard = new PageGuard(`S3 at ${s3.settings.endpoint}: ListParts of ${subject}`, DEFAULT_MAX_PAGES);
  let marker: string | undefined;
  try {
    for (;;) {
      const page = await s3.send<ListPartsCommandOutput>(
        new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: recorded.uploadId, PartNumberMarker: marker }),
        { call: "ListParts", subject: `${subject} (upload ${recorded.uploadId})` },
        signal,
      );
      const parts = page.Parts ?? [];
      // Part numbers compare as keys once zero-padded: the guard checks they move forward.
      guard.page(parts.map((p) => String(p.PartNumber ?? 0).padStart(5, "0")));
      for (const p of parts) {
        held.set(p.PartNumber ?? 0, { etag: (p.ETag ?? "").replace(/"/g, ""), size: p.Size ?? -1 });
      }
      if (!page.IsTruncated) break;
      marker = guard.next(page.NextPartNumberMarker ?? String(parts.at(-1)?.PartNumber ?? ""));
    }
  } catch (e) {
    if (e instanceof AwsServiceError && e.awsCode === "NoSuchUpload") {
      throw new ChromogenicError(
        `the multipart upload ${recorded.uploadId} of ${subject} no longer exists on the server (aborted or ` +
          "expired): start the upload again",
        "ENOENT",
        { cause: e },
      );
    }
    throw e;
  }
  const kept = contiguousParts(recorded.parts).filter((p) => {
    const h = held.get(p.partNumber);
    return h !== undefined && h.etag === p.etag && h.size === p.size;
  });
  return { ...recorded, parts: contiguousParts(kept) };
}

async function uploadPart(
  s3: S3Connection,
  state: MultipartUploadState,
  partNumber: number,
  data: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<UploadedPart> {
  const md5 = createHash("md5").update(data).digest();
  const subject = `${S3Connection.location(state.bucket, state.key)} (upload ${state.uploadId}, part ${partNumber})`;
  const out = await s3.send<UploadPartCommandOutput>(
    new UploadPartCommand({
      Bucket: state.bucket,
      Key: state.key,
      UploadId: state.uploadId,
      PartNumber: partNumber,
      Body: data,
      ContentLength: data.byteLength,
      ContentMD5: md5.toString("base64"),
    }),
    { call: "UploadPart", subject },
    signal,
  );
  const etag = (out.ETag ?? "").replace(/"/g, "").toLowerCase();
  if (!etag) throw new TransferError(`S3 at ${s3.settings.endpoint}: ${subject} was stored without an ETag`);
  if (/^[0-9a-f]{32}$/.test(etag) && etag !== md5.toString("hex")) {
    throw new VerificationError(`${subject}: the server's ETag ${etag} is not the MD5 of the part sent`);
  }
  return { partNumber, etag, size: data.byteLength };
}

/** The source cut into buffers of exactly `partSize` bytes, the last one shorter. */
async function* partsOf(source: AsyncIterable<Uint8Array>, partSize: number): AsyncGenerator<Uint8Array> {
  let buffer = Buffer.allocUnsafe(partSize);
  let filled = 0;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(partSize - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === partSize) {
        yield buffer;
        buffer = Buffer.allocUnsafe(partSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

/** `callback` called one call at a time, in order, each awaited before the next. */
function serialised(
  callback: ((state: MultipartUploadState) => void | Promise<void>) | undefined,
): (state: MultipartUploadState) => Promise<void> {
  let chain: Promise<void> = Promise.resolve();
  return (state) => {
    chain = chain.then(() => callback?.(state));
    return chain;
  };
}
