import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { AbortedError, InputChangedError, RemoteInputError, UsageError } from "../../../src/formats/errors.js";
import { HttpInput, openHttpInput } from "../../../src/formats/inputs/http-input.js";
import { SequentialHttpInput } from "../../../src/formats/inputs/http-sequential-input.js";
import { retryAfterMs } from "../../../src/formats/inputs/http-retry.js";
import { RangeServer, RepeatingImage, servedBuffer } from "../../helpers/range-server.js";
import { makeRaw, pattern, qemuImg, scratch } from "../../helpers/tools.js";

const KiB = 1024;
const MiB = 2 ** 20;

/** Opens `url`, closing the input when the test ends. */
async function open(t: { after(fn: () => Promise<void>): void }, ...args: Parameters<typeof openHttpInput>) {
  const input = await openHttpInput(...args);
  t.after(() => input.close());
  return input;
}

/** Reads `input` in `chunk`-byte reads with `inFlight` of them outstanding, in increasing order. */
async function readInOrder(input: HttpInput | SequentialHttpInput, chunk: number, inFlight: number) {
  const out = Buffer.alloc(input.size);
  let next = 0;
  const worker = async () => {
    while (next < input.size) {
      const at = next;
      const length = Math.min(chunk, input.size - at);
      next += length;
      await input.readExact(at, length, out.subarray(at, at + length));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return out;
}

test("a qcow2 made by qemu-img reads byte for byte at random offsets, with Range GETs only", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "disk.raw");
  const qcow2 = join(dir, "disk.qcow2");
  await makeRaw(raw, 64 * MiB, [
    { offset: 0, data: pattern(5 * MiB + 123, 3) },
    { offset: 20 * MiB - 7, data: pattern(12 * MiB, 5) },
    { offset: 64 * MiB - 4096, data: pattern(4096, 9) },
  ]);
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, qcow2);
  const local = await readFile(qcow2);
  const server = await RangeServer.start(t, servedBuffer(local, { etag: '"qcow2-v1"' }));

  // Default blocks read one at a time; then small blocks in a small cache with many reads at once, so that blocks
  // are evicted while reads wait for them and their buffers handed on.
  for (const { blockSize, cachedBlocks, together, reads } of [
    { blockSize: 8 * MiB, cachedBlocks: 4, together: 1, reads: 160 },
    { blockSize: 64 * KiB, cachedBlocks: 4, together: 8, reads: 160 },
    { blockSize: 64 * KiB, cachedBlocks: 1, together: 16, reads: 64 },
  ]) {
    const input = await open(t, server.url(), { blockSize, cachedBlocks });
    assert.ok(input instanceof HttpInput);
    assert.equal(input.size, local.length);
    assert.equal(input.sequential, false);
    assert.equal(input.path, server.url());
    const header = await input.readExact(0, 4);
    assert.equal(header.toString("latin1"), "QFI\xfb");
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < reads; i += together) {
      const batch = Array.from({ length: together }, (_, k) => {
        const length = 1 + random(Math.min(local.length, (i + k) % 10 === 0 ? 3 * blockSize : 70_000));
        const at = random(local.length - length + 1);
        return input.readExact(at, length).then((got) => ({ at, length, got }));
      });
      for (const { at, length, got } of await Promise.all(batch)) {
        assert.ok(got.equals(local.subarray(at, at + length)), `bytes ${at}+${length} with ${blockSize}-byte blocks`);
      }
    }
    const tail = await input.readPadded(local.length - 10, 20);
    assert.ok(tail.subarray(0, 10).equals(local.subarray(-10)));
    assert.ok(tail.subarray(10).equals(Buffer.alloc(10)));
    await assert.rejects(input.readExact(local.length - 10, 11), /lies beyond the end/);
  }
  // A presigned URL is signed for GET alone: nothing else may be sent, and every GET asks for a range.
  assert.deepEqual(new Set(server.received.map((r) => r.method)), new Set(["GET"]));
  assert.ok(server.received.every((r) => /^bytes=\d+-\d+$/.test(r.headers.range ?? "")));
  assert.ok(
    server.received.every((r) => r.headers["if-match"] === undefined || r.headers["if-match"] === '"qcow2-v1"'),
  );
});

test("a sequential read fetches each block once, with read-ahead requests in flight", async (t) => {
  const image = new RepeatingImage(40 * MiB + 5);
  const server = await RangeServer.start(t, image);
  server.delayMs = 30; // long enough for the read-ahead requests to overlap
  const input = await open(t, server.url());
  assert.equal(input.stats.requests, 1, "opening asks for the first block only");
  await input.readExact(0, 4096);
  assert.equal(input.stats.requests, 1, "probing the head reads nothing ahead");

  const data = await readInOrder(input, MiB, 4);
  assert.ok(image.holdsAt(0, data));
  assert.equal(input.stats.requests, Math.ceil(image.size / (4 * MiB)), "one request per 4 MiB block, none twice");
  assert.equal(input.stats.bytesFetched, image.size);
  assert.equal(input.stats.retries, 0);
  assert.ok(server.maxActive >= 2, `read-ahead overlapped requests (at most ${server.maxActive} at once)`);
  assert.ok(server.maxActive <= 4, `no more than maxRequests at once (${server.maxActive})`);
});

test("a server that ignores Range gives a sequential input, its head readable twice", async (t) => {
  const image = pattern(3 * MiB + 17, 8);
  const server = await RangeServer.start(t, servedBuffer(image, { etag: '"s"' }));
  server.ranges = false;
  const input = await open(t, server.url());
  assert.ok(input instanceof SequentialHttpInput);
  assert.equal(input.sequential, true);
  assert.equal(input.size, image.length);
  // Format detection reads the head, then the driver reads it again.
  assert.ok((await input.readExact(0, 4096)).equals(image.subarray(0, 4096)));
  assert.ok((await input.readExact(512, 1024)).equals(image.subarray(512, 1536)));
  // Reads made in increasing order, several in flight, and a gap skipped.
  const reads = [input.readExact(4096, 100_000), input.readExact(104_096, MiB), input.readExact(2 * MiB, 1000)];
  const [a, b, c] = await Promise.all(reads);
  assert.ok(a!.equals(image.subarray(4096, 104_096)));
  assert.ok(b!.equals(image.subarray(104_096, 104_096 + MiB)));
  assert.ok(c!.equals(image.subarray(2 * MiB, 2 * MiB + 1000)));
  await assert.rejects(input.readExact(MiB, 10), (e: Error) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /does not support Range requests, so the image can only be read once, in order/);
    return true;
  });
  const rest = await input.readExact(3 * MiB, 17);
  assert.ok(rest.equals(image.subarray(3 * MiB)));
  assert.equal(input.stats.requests, 1);
  assert.equal(server.received.length, 1);
});

test("a server without Range that drops the connection fails the read, saying it cannot resume", async (t) => {
  const image = pattern(2 * MiB, 5);
  const server = await RangeServer.start(t, servedBuffer(image));
  server.handle = (_req, res) => {
    res.writeHead(200, { "content-length": image.length });
    res.write(image.subarray(0, MiB), () => res.destroy());
    return true;
  };
  const input = await open(t, server.url(), { retry: { baseDelayMs: 5 } });
  assert.equal(input.sequential, true);
  assert.ok((await input.readExact(0, MiB / 2)).equals(image.subarray(0, MiB / 2)));
  await assert.rejects(input.readExact(MiB / 2, MiB), (e: Error) => {
    assert.ok(e instanceof RemoteInputError, String(e));
    assert.match(
      e.message,
      /^http:\/\/127\.0\.0\.1:\d+\/images\/disk\.img: the connection failed at byte \d+ \(the server does not support Range requests, so the read cannot resume\)/,
    );
    return true;
  });
  assert.equal(server.received.length, 1);
});

test("a redirect to another origin gets none of the caller's headers; a relative one on the same origin does", async (t) => {
  const image = pattern(300 * KiB, 4);
  const home = await RangeServer.start(t, servedBuffer(Buffer.alloc(0)));
  const storage = await RangeServer.start(t, servedBuffer(image, { etag: '"r"' }));
  home.handle = (req, res) => {
    if (req.url === "/v2/images/abc/file") res.writeHead(302, { location: "moved" }).end();
    else if (req.url === "/v2/images/abc/moved") {
      res.writeHead(307, { location: storage.url("/bucket/abc?X-Amz-Signature=s3cr3t") }).end();
    } else res.writeHead(500).end();
    return true;
  };
  const input = await open(t, home.url("/v2/images/abc/file"), {
    headers: async () => ({ "X-Auth-Token": "token-value", authorization: "Bearer other-secret" }),
    blockSize: 128 * KiB,
  });
  const data = await readInOrder(input, 100 * KiB, 2);
  assert.ok(data.equals(image));
  assert.equal(input.path, home.url("/v2/images/abc/file"));

  // Three blocks, each asked of the URL given and redirected twice (two of them at the same time).
  assert.deepEqual(
    home.received.map((r) => r.url).sort(),
    Array.from({ length: 3 }, () => ["/v2/images/abc/file", "/v2/images/abc/moved"])
      .flat()
      .sort(),
  );
  for (const r of home.received) {
    assert.equal(r.headers["x-auth-token"], "token-value");
    assert.equal(r.headers.authorization, "Bearer other-secret");
  }
  assert.equal(storage.received.length, 3);
  for (const r of storage.received) {
    assert.equal(r.url, "/bucket/abc?X-Amz-Signature=s3cr3t");
    assert.equal(r.headers["x-auth-token"], undefined, "the token must not reach another origin");
    assert.equal(r.headers.authorization, undefined);
    assert.match(r.headers.range ?? "", /^bytes=\d+-\d+$/);
  }
});

test("the caller's headers are fetched for every request, and a 401 is repeated once with fresh ones", async (t) => {
  const image = pattern(200 * KiB, 6);
  const server = await RangeServer.start(t, servedBuffer(image, { etag: '"t"' }));
  let renewals = 0;
  let token = "token-0";
  const revoked = new Set<string>();
  server.handle = (req, res) => {
    if (!revoked.has(String(req.headers["x-auth-token"]))) return false;
    res.writeHead(401).end();
    return true;
  };
  const forgotten: string[] = [];
  const input = await open(t, server.url(), {
    blockSize: 64 * KiB,
    readAhead: 0,
    headers: () => ({ "x-auth-token": token }),
    onUnauthorized: (sent) => {
      forgotten.push(String(sent["x-auth-token"]));
      token = `token-${++renewals}`;
    },
  });
  await input.readExact(64 * KiB, 10);
  token = "token-renewed"; // the session renewed its token between two reads
  await input.readExact(128 * KiB, 10);
  revoked.add("token-renewed"); // and then Keystone revoked it early
  const got = await input.readExact(192 * KiB, 8 * KiB);
  assert.ok(got.equals(image.subarray(192 * KiB)));
  assert.deepEqual(
    server.received.map((r) => r.headers["x-auth-token"]),
    ["token-0", "token-0", "token-renewed", "token-renewed", "token-1"],
  );
  assert.deepEqual(forgotten, ["token-renewed"]);
});

for (const variant of [
  { name: "ETag, If-Match honoured", validators: { etag: '"v1"' }, next: { etag: '"v2"' }, conditions: true },
  { name: "ETag, If-Match ignored", validators: { etag: '"v1"' }, next: { etag: '"v2"' }, conditions: false },
  {
    name: "Last-Modified only, ignored",
    validators: { lastModified: "Mon, 01 Dec 2025 10:00:00 GMT" },
    next: { lastModified: "Tue, 02 Dec 2025 10:00:00 GMT" },
    conditions: false,
  },
]) {
  test(`an image replaced mid-read is an InputChangedError naming the URL without its query (${variant.name})`, async (t) => {
    const server = await RangeServer.start(t, servedBuffer(pattern(256 * KiB, 1), variant.validators));
    server.conditions = variant.conditions;
    const input = await open(t, server.url("/disk.img?X-Amz-Credential=AKIA&X-Amz-Signature=deadbeef"), {
      blockSize: 64 * KiB,
      readAhead: 0,
    });
    await input.readExact(64 * KiB, 100);
    server.image = servedBuffer(pattern(256 * KiB, 2), variant.next);
    await assert.rejects(input.readExact(128 * KiB, 100), (e: Error) => {
      assert.ok(e instanceof InputChangedError, String(e));
      assert.equal(e.code, "ECHANGED");
      assert.ok(e.message.startsWith(`${server.url("/disk.img")}: the image changed while it was being read`));
      assert.doesNotMatch(e.message, /Amz|deadbeef|\?/);
      return true;
    });
    const sent = server.received.at(-1)!.headers;
    if (variant.validators.etag) assert.equal(sent["if-match"], '"v1"');
    else assert.equal(sent["if-unmodified-since"], variant.validators.lastModified);
  });
}

test("a connection dropped mid-body is retried and the read succeeds", async (t) => {
  const image = pattern(256 * KiB, 12);
  const server = await RangeServer.start(t, servedBuffer(image, { etag: '"d"' }));
  server.handle = (req, res, index) => {
    if (index !== 1) return false;
    res.writeHead(206, {
      "content-length": 64 * KiB,
      "content-range": `bytes 65536-131071/${image.length}`,
      etag: '"d"',
    });
    res.write(image.subarray(64 * KiB, 80 * KiB), () => res.destroy());
    return true;
  };
  const input = await open(t, server.url(), { blockSize: 64 * KiB, readAhead: 0, retry: { baseDelayMs: 5 } });
  const got = await input.readExact(64 * KiB, 64 * KiB);
  assert.ok(got.equals(image.subarray(64 * KiB, 128 * KiB)));
  assert.equal(input.stats.retries, 1);
  assert.equal(input.stats.requests, 3);
});

for (const form of ["seconds", "HTTP date"] as const) {
  test(`503 and 429 are retried, a Retry-After in ${form} honoured`, async (t) => {
    const image = pattern(128 * KiB, 13);
    const server = await RangeServer.start(t, servedBuffer(image, { etag: '"b"' }));
    server.handle = (req, res, index) => {
      if (index === 1) {
        // An HTTP date has whole seconds: two from now is more than one from now whenever it is read.
        const when = form === "seconds" ? "1" : new Date(Date.now() + 2000).toUTCString();
        res.writeHead(503, { "retry-after": when }).end("busy");
      } else if (index === 2) res.writeHead(429).end();
      else return false;
      return true;
    };
    // A short backoff: only the server's Retry-After can make the read take a second.
    const input = await open(t, server.url(), { blockSize: 64 * KiB, readAhead: 0, retry: { baseDelayMs: 5 } });
    const started = Date.now();
    const got = await input.readExact(64 * KiB, 10);
    const waited = Date.now() - started;
    assert.ok(got.equals(image.subarray(64 * KiB, 64 * KiB + 10)));
    assert.ok(waited >= 950 && waited < 3500, `waited ${waited} ms`);
    assert.equal(input.stats.retries, 2);
  });
}

test("Retry-After: delay-seconds, an HTTP date, garbage", () => {
  const now = Date.parse("Sun, 07 Dec 2025 10:00:00 GMT");
  assert.equal(retryAfterMs("120", now), 120_000);
  assert.equal(retryAfterMs("Sun, 07 Dec 2025 10:00:30 GMT", now), 30_000);
  assert.equal(retryAfterMs("Sun, 07 Dec 2025 09:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon", now), undefined);
  assert.equal(retryAfterMs(null, now), undefined);
});

test("a 503 that persists fails after the attempts, naming the status", async (t) => {
  const server = await RangeServer.start(t, servedBuffer(pattern(1000)));
  server.handle = (_req, res) => {
    res.writeHead(503, "Service Unavailable").end();
    return true;
  };
  const url = server.url("/disk.img?token=SECRET");
  await assert.rejects(openHttpInput(url, { retry: { attempts: 3, baseDelayMs: 5 } }), (e: Error) => {
    assert.ok(e instanceof RemoteInputError);
    assert.equal(e.status, 503);
    assert.equal(
      e.message,
      `${server.url("/disk.img")}: the first block: HTTP 503 Service Unavailable (after 3 attempts)`,
    );
    return true;
  });
  assert.equal(server.received.length, 3);
});

test("404 is a RemoteInputError at once, naming the URL without its query", async (t) => {
  const server = await RangeServer.start(t, servedBuffer(pattern(1000)));
  server.handle = (_req, res) => {
    res.writeHead(404, "Not Found").end("<Error>NoSuchKey</Error>");
    return true;
  };
  await assert.rejects(openHttpInput(server.url("/missing.qcow2?X-Amz-Signature=abc123")), (e: Error) => {
    assert.ok(e instanceof RemoteInputError);
    assert.equal(e.code, "EREMOTE");
    assert.equal(e.status, 404);
    assert.equal(e.message, `${server.url("/missing.qcow2")}: the first block: HTTP 404 Not Found`);
    return true;
  });
  assert.equal(server.received.length, 1, "a 404 is not retried");
});

test("a read whose first block fails returns only once its other blocks are done with the buffer", async (t) => {
  const image = pattern(256 * KiB, 3);
  const server = await RangeServer.start(t, servedBuffer(image, { etag: '"b"' }));
  server.handle = async (req, res) => {
    if (req.headers.range === `bytes=${64 * KiB}-${128 * KiB - 1}`) {
      res.writeHead(404, "Not Found").end();
      return true;
    }
    // The next block comes late, after the read has had its failure.
    if (req.headers.range === `bytes=${128 * KiB}-${192 * KiB - 1}`) await new Promise((r) => setTimeout(r, 300));
    return false;
  };
  const input = await open(t, server.url(), { blockSize: 64 * KiB, readAhead: 0 });
  const buf = Buffer.alloc(128 * KiB, 0xee);
  await assert.rejects(input.readExact(64 * KiB, 128 * KiB, buf), (e: Error) => e instanceof RemoteInputError);
  const after = Buffer.from(buf);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(buf.equals(after), "nothing was copied into the buffer after the read failed");
  assert.ok(buf.subarray(64 * KiB).equals(image.subarray(128 * KiB, 192 * KiB)), "the late block was copied before");
});

test("an abort cancels the request in flight; close() makes later reads fail", async (t) => {
  const image = pattern(256 * KiB, 2);
  const server = await RangeServer.start(t, servedBuffer(image, { etag: '"h"' }));
  let hung: Promise<void> | undefined;
  server.handle = (req, _res, index) => {
    if (index !== 1) return false;
    hung = new Promise((resolve) => req.socket.on("close", () => resolve()));
    return true; // never answered
  };
  const controller = new AbortController();
  const input = await open(t, server.url(), { blockSize: 64 * KiB, readAhead: 0, signal: controller.signal });
  const read = input.readExact(64 * KiB, 10);
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  controller.abort();
  await assert.rejects(read, AbortedError);
  assert.ok(Date.now() - started < 1000);
  await hung; // the server saw the connection go
  await assert.rejects(input.readExact(0, 10), AbortedError);

  const other = await open(t, server.url(), { blockSize: 64 * KiB });
  await other.close();
  await assert.rejects(other.readExact(0, 10), /the input was closed/);
});

test("a redirect loop stops after 5 hops; a size other than the one expected is refused", async (t) => {
  const server = await RangeServer.start(t, servedBuffer(pattern(1000), { etag: '"l"' }));
  const loop = await RangeServer.start(t, servedBuffer(Buffer.alloc(0)));
  loop.handle = (req, res) => {
    res.writeHead(302, { location: `/again${req.url}` }).end();
    return true;
  };
  await assert.rejects(
    openHttpInput(loop.url("/x?sig=1")),
    /^RemoteInputError: http:\/\/127\.0\.0\.1:\d+\/x: more than 5 redirects$/,
  );
  assert.equal(loop.received.length, 6);
  await assert.rejects(
    openHttpInput(server.url(), { expectedSize: 1001 }),
    /the server holds 1000 bytes, 1001 were expected/,
  );
  const input = await open(t, server.url(), { expectedSize: 1000 });
  assert.equal(input.size, 1000);
});

test("an empty image opens with size 0; a compressed reply is refused", async (t) => {
  const empty = await RangeServer.start(t, servedBuffer(Buffer.alloc(0), { etag: '"e"' }));
  const input = await open(t, empty.url());
  assert.equal(input.size, 0);
  assert.deepEqual(await input.readPadded(0, 4), Buffer.alloc(4));

  const gzip = await RangeServer.start(t, servedBuffer(pattern(100)));
  gzip.handle = (_req, res) => {
    res.writeHead(200, { "content-encoding": "gzip" }).end();
    return true;
  };
  await assert.rejects(openHttpInput(gzip.url()), /sends the image gzip-encoded/);
});
