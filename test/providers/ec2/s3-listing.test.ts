/**
 * Listing a bucket page by page: against the real Swift (many pages, in order), and against a tiny local
 * server that plays a broken or hostile S3 — a continuation token handed back forever, a marker that does not
 * move, "more" without a token, keys that go backwards, more pages than allowed. Each is an error naming the
 * bucket, never a loop.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { ensureBucket } from "../../../src/providers/ec2/s3-bucket.js";
import { putObject } from "../../../src/providers/ec2/s3-objects.js";
import { listObjects, type ListObjectsOptions } from "../../../src/providers/ec2/s3-listing.js";
import { S3Connection } from "../../../src/providers/ec2/s3-connection.js";
import { requireSwift, swiftConnection, testBucket } from "../../helpers/swift-s3.js";

type Closer = { after(fn: () => Promise<void> | void): void };

/** A local "S3" whose listing pages come from `page(query, n)`; it counts the requests. */
async function fakeS3(t: Closer, page: (query: URLSearchParams, n: number) => string) {
  let requests = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const query = new URL(req.url ?? "/", "http://x").searchParams;
    res.writeHead(200, { "content-type": "application/xml", "x-amz-request-id": `req-${requests}` });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${page(query, requests++)}`);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const s3 = new S3Connection({
    cloud: "fake",
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    accessKeyId: "AKID",
    secretAccessKey: "secret-for-the-fake",
    maxAttempts: 1,
  });
  return { s3, requests: () => requests };
}

const v2 = (keys: string[], truncated: boolean, token?: string) =>
  `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>` +
  `<KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
  (token ? `<NextContinuationToken>${token}</NextContinuationToken>` : "") +
  keys.map((k) => `<Contents><Key>${k}</Key><Size>1</Size><ETag>"x"</ETag></Contents>`).join("") +
  `</ListBucketResult>`;

const v1 = (keys: string[], truncated: boolean, marker?: string) =>
  `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>` +
  `<Marker></Marker><MaxKeys>1000</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
  (marker ? `<NextMarker>${marker}</NextMarker>` : "") +
  keys.map((k) => `<Contents><Key>${k}</Key><Size>1</Size><ETag>"x"</ETag></Contents>`).join("") +
  `</ListBucketResult>`;

async function drain(s3: S3Connection, options: ListObjectsOptions = {}): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of listObjects(s3, "b", "", options)) keys.push(o.key);
  return keys;
}

test("ListObjectsV2 that is truncated with the same token forever is an error, not a loop", async (t) => {
  const { s3, requests } = await fakeS3(t, (_q, n) => v2([`key-${String(n).padStart(4, "0")}`], true, "same-token"));
  await assert.rejects(drain(s3), {
    message:
      "S3 at " +
      s3.settings.endpoint +
      ': ListObjectsV2 of bucket b under "": the server gave the continuation token "same-token" a second time; ' +
      "the listing would never end",
  });
  assert.equal(requests(), 2);
});

test("a listing that says more but gives no token, or keys that go backwards, is an error", async (t) => {
  const noToken = await fakeS3(t, () => v2(["a"], true));
  await assert.rejects(drain(noToken.s3), /the server says there is more but gives no token to go on/);
  const backwards = await fakeS3(t, (_q, n) => v2([n === 0 ? "m" : "c"], true, `t${n}`));
  await assert.rejects(drain(backwards.s3), /the server listed "c" after "m"; a listing must move forward/);
});

test("ListObjects (V1) whose marker does not move is an error", async (t) => {
  const { s3 } = await fakeS3(t, () => v1(["a", "b"], true));
  await assert.rejects(drain(s3, { api: "v1" }), /continuation token "b" a second time|listed "a" after "b"/);
});

test("a listing longer than the bound on pages is an error; one within it is read whole", async (t) => {
  const { s3 } = await fakeS3(t, (q, n) =>
    n < 4 ? v2([`k${n}`], true, `t${n}`) : v2([`k${n}`], false, q.get("continuation-token") ?? ""),
  );
  await assert.rejects(drain(s3, { maxPages: 3 }), /more than 3 pages; refusing to read further/);
  const whole = await fakeS3(t, (_q, n) => (n < 4 ? v2([`k${n}`], true, `t${n}`) : v2([`k${n}`], false)));
  assert.deepEqual(await drain(whole.s3), ["k0", "k1", "k2", "k3", "k4"]);
});

test("a real listing of many pages comes back whole and in order (Swift, V1 and V2)", async (t) => {
  await requireSwift();
  const s3 = swiftConnection();
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const keys = Array.from({ length: 23 }, (_, i) => `p/${String(i).padStart(5, "0")}`);
  await Promise.all(keys.map((k) => putObject(s3, bucket, k, Buffer.from(k))));
  await putObject(s3, bucket, "q/other", Buffer.from("not under the prefix"));
  for (const api of ["v2", "v1"] as const) {
    const listed: string[] = [];
    for await (const o of listObjects(s3, bucket, "p/", { api, pageSize: 5, maxPages: 5 })) listed.push(o.key);
    assert.deepEqual(listed, keys, api);
  }
});
