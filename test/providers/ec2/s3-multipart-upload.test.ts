/**
 * Multipart uploads of a stream against a real Swift with s3api: a ~30 MiB stream in 5 MiB parts, an upload
 * cancelled half-way and resumed from its recorded parts (the object is the same bytes), a failure that
 * aborts the upload, and an explicit abort that leaves nothing in the bucket.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureBucket } from "../../../src/providers/ec2/s3-bucket.js";
import { getObject, headObject } from "../../../src/providers/ec2/s3-objects.js";
import {
  abortMultipartUpload,
  MIN_PART_SIZE,
  resumeOffset,
  uploadMultipart,
  type MultipartUploadState,
} from "../../../src/providers/ec2/s3-multipart-upload.js";
import { errorCode } from "../../../src/util/errors.js";
import { pattern, scratch } from "../../helpers/tools.js";
import { requireSwift, swiftConnection, testBucket } from "../../helpers/swift-s3.js";
import { multipartUploadsIn } from "../../helpers/s3-uploads.js";

before(requireSwift);

const SIZE = 30 * 2 ** 20 + 12_345;

/** `data` as a stream of 64 KiB chunks, as a file or a pipe would deliver it. */
async function* chunked(data: Uint8Array, chunk = 65_536): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < data.length; o += chunk) yield data.subarray(o, Math.min(o + chunk, data.length));
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("a ~30 MiB stream is uploaded in 5 MiB parts and reads back the same", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const data = pattern(SIZE, 7);
  const states: MultipartUploadState[] = [];
  const result = await uploadMultipart(s3, bucket, "disk.raw", chunked(data), {
    partSize: MIN_PART_SIZE,
    onState: (s) => void states.push(s),
  });
  assert.equal(result.size, SIZE);
  assert.match(result.etag ?? "", /-7$/, "seven parts");
  assert.equal(states.at(-1)?.parts.length, 7);
  assert.deepEqual(
    states.at(-1)?.parts.map((p) => p.partNumber),
    [1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(sha(await getObject(s3, bucket, "disk.raw", SIZE)), sha(data));
  assert.deepEqual(await multipartUploadsIn(s3, bucket), []);
});

test("an upload cancelled half-way resumes from its recorded parts; the object is identical", async (t) => {
  const dir = await scratch(t);
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const data = pattern(SIZE, 11);
  const file = join(dir, "disk.raw");
  await writeFile(file, data);

  // First run: cancelled once three parts are recorded (as a kill would leave the journal).
  const controller = new AbortController();
  let recorded: MultipartUploadState | undefined;
  const first = await uploadMultipart(s3, bucket, "disk.raw", createReadStream(file), {
    partSize: MIN_PART_SIZE,
    concurrency: 2,
    signal: controller.signal,
    onState: (s) => {
      recorded = structuredClone(s);
      if (s.parts.length >= 3) controller.abort();
    },
  }).catch((e: unknown) => e as Error);
  assert.equal(errorCode(first), "EABORTED", String(first));
  assert.match((first as Error).message, /is kept with \d+ part\(s\) for a resume/);
  assert.ok(recorded && recorded.parts.length >= 3);
  assert.equal(await headObject(s3, bucket, "disk.raw"), undefined, "no object before the upload completes");
  assert.equal((await multipartUploadsIn(s3, bucket)).length, 1, "the upload is kept");

  // Second run: from the recorded state, the source starting where the unbroken run of parts ends.
  const offset = resumeOffset(recorded);
  assert.ok(offset >= 3 * MIN_PART_SIZE && offset % MIN_PART_SIZE === 0);
  const sentParts: number[] = [];
  const result = await uploadMultipart(s3, bucket, "disk.raw", createReadStream(file, { start: offset }), {
    resume: recorded,
    onState: (s) => void sentParts.push(s.parts.length),
  });
  assert.equal(result.size, SIZE);
  assert.ok(sentParts[0]! >= 3, `the resumed run starts with the recorded parts (${sentParts[0]})`);
  assert.equal(sha(await getObject(s3, bucket, "disk.raw", SIZE)), sha(data));
  assert.deepEqual(await multipartUploadsIn(s3, bucket), []);
});

test("a failing source aborts the multipart upload: no object, no upload left", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield* chunked(pattern(12 * 2 ** 20, 3));
    throw new Error("the disk went away");
  }
  const e = await uploadMultipart(s3, bucket, "broken.raw", failing(), { partSize: MIN_PART_SIZE }).catch(
    (x: unknown) => x as Error,
  );
  assert.match(String(e), /the disk went away/);
  assert.equal(await headObject(s3, bucket, "broken.raw"), undefined);
  assert.deepEqual(await multipartUploadsIn(s3, bucket), []);
});

test("abortMultipartUpload leaves nothing; a resume of it then says the upload is gone", async (t) => {
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const controller = new AbortController();
  let recorded: MultipartUploadState | undefined;
  await uploadMultipart(s3, bucket, "gone.raw", chunked(pattern(SIZE, 5)), {
    partSize: MIN_PART_SIZE,
    signal: controller.signal,
    onState: (s) => {
      recorded = s;
      if (s.parts.length >= 1) controller.abort();
    },
  }).catch(() => undefined);
  assert.ok(recorded);
  await abortMultipartUpload(s3, recorded);
  assert.deepEqual(await multipartUploadsIn(s3, bucket), []);
  assert.equal(await headObject(s3, bucket, "gone.raw"), undefined);
  await abortMultipartUpload(s3, recorded); // twice: not an error
  const e = await uploadMultipart(s3, bucket, "gone.raw", chunked(new Uint8Array(0)), { resume: recorded }).catch(
    (x: unknown) => x as Error,
  );
  assert.equal(errorCode(e), "ENOENT");
  assert.match((e as Error).message, /no longer exists on the server \(aborted or expired\): start the upload again/);
});
