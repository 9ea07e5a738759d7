/**
 * The HTTP connection against a server that writes raw bytes, so that each way of framing a body — and each
 * way of getting it wrong — can be sent exactly: chunks with extensions and trailers, a body ended by the
 * connection's close, bodies longer than asked for, oversized heads, interim 100 replies, a kept-alive
 * connection the server closes while idle.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { UsageError } from "../../../src/formats/errors.js";
import { BodyTooLongError, HttpConnection } from "../../../src/formats/inputs/http-connection.js";
import { MalformedHeadError } from "../../../src/formats/inputs/http-head.js";
import { openHttpInput } from "../../../src/formats/inputs/http-input.js";
import { pattern } from "../../helpers/tools.js";

const KiB = 1024;

interface Scripted {
  readonly url: string;
  /** Connections accepted so far. */
  connections: number;
  /** Requests received, their heads as text. */
  readonly requests: string[];
}

/** A TCP server on 127.0.0.1 that hands every request head (and its connection) to `reply`. */
async function scriptedServer(
  t: { after(fn: () => Promise<void>): void },
  reply: (socket: Socket, request: string, index: number) => void,
): Promise<Scripted> {
  const state: Scripted = { url: "", connections: 0, requests: [] };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let pending = "";
    socket.on("data", (d: Buffer) => {
      pending += d.toString("latin1");
      for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
        const request = pending.slice(0, end);
        pending = pending.slice(end + 4);
        state.requests.push(request);
        reply(socket, request, state.requests.length - 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/disk.img` });
}

/** A connection to `url`, closed when the test ends; reusable connections are counted. */
async function connect(t: { after(fn: () => void): void }, url: string) {
  const controller = new AbortController();
  const reused: HttpConnection[] = [];
  const connection = await HttpConnection.open(new URL(url), {
    idleTimeoutMs: 5000,
    signal: controller.signal,
    onReusable: (c) => reused.push(c),
    onBodyBytes: () => {},
  });
  t.after(() => connection.close());
  return { connection, reused, controller };
}

/** `body` as chunks of `size` bytes, each size line with an extension, then a trailer. */
function chunked(body: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size);
    parts.push(Buffer.from(`${piece.length.toString(16)};ext=1\r\n`), piece, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from("0\r\nX-Checksum: abc\r\n\r\n"));
  return Buffer.concat(parts);
}

test("a chunked body (extensions, trailers) fills the buffer exactly and the connection serves again", async (t) => {
  const body = pattern(300 * KiB, 3);
  const server = await scriptedServer(t, (socket) => {
    socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    socket.write(chunked(body, 7 * KiB + 3));
  });
  const { connection, reused } = await connect(t, server.url);
  for (let round = 0; round < 2; round++) {
    const head = await connection.request("GET", "/disk.img", [["host", "x"]]);
    assert.equal(head.status, 200);
    const into = Buffer.alloc(body.length);
    await connection.readBodyInto(into);
    assert.ok(into.equals(body));
    assert.equal(reused.length, round + 1);
  }
  assert.equal(server.connections, 1);
});

test("a body ended by the connection's close is read whole; the connection is not reused", async (t) => {
  const body = pattern(200 * KiB, 4);
  const server = await scriptedServer(t, (socket) => {
    socket.write("HTTP/1.1 200 OK\r\n\r\n");
    socket.end(body);
  });
  const { connection, reused } = await connect(t, server.url);
  await connection.request("GET", "/disk.img", []);
  const into = Buffer.alloc(body.length);
  await connection.readBodyInto(into);
  assert.ok(into.equals(body));
  assert.equal(reused.length, 0);
  assert.equal(connection.available, false);
});

for (const kind of ["content-length", "chunked"] as const) {
  test(`a body longer than the buffer (${kind}) is refused and nothing is written past the buffer`, async (t) => {
    const body = pattern(96 * KiB, 5);
    const server = await scriptedServer(t, (socket) => {
      if (kind === "chunked")
        socket.write(
          Buffer.concat([
            Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            chunked(body, 20 * KiB),
          ]),
        );
      else
        socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
    });
    const { connection } = await connect(t, server.url);
    await connection.request("GET", "/disk.img", []);
    const whole = Buffer.alloc(96 * KiB, 0xee);
    const into = whole.subarray(0, 64 * KiB);
    await assert.rejects(connection.readBodyInto(into), BodyTooLongError);
    assert.ok(
      whole.subarray(64 * KiB).every((b) => b === 0xee),
      "bytes past the buffer were written",
    );
    assert.equal(connection.available, false);
  });
}

test("a head over 64 KiB and a malformed chunk size are MalformedHeadErrors", async (t) => {
  const server = await scriptedServer(t, (socket, _request, index) => {
    if (index === 0) socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70 * KiB)}\r\n\r\n`);
    else socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  });
  const first = await connect(t, server.url);
  await assert.rejects(first.connection.request("GET", "/", []), /reply head longer than 64 KiB/);
  const second = await connect(t, server.url);
  await second.connection.request("GET", "/", []);
  await assert.rejects(second.connection.readBodyInto(Buffer.alloc(10)), (e: unknown) => {
    assert.ok(e instanceof MalformedHeadError);
    assert.match(e.message, /malformed chunk size/);
    return true;
  });
});

test("an interim 100 reply is skipped; bytes sent after a body make the connection unusable", async (t) => {
  const server = await scriptedServer(t, (socket) => {
    socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcGARBAGE");
  });
  const { connection, reused } = await connect(t, server.url);
  const head = await connection.request("GET", "/", []);
  assert.equal(head.status, 200);
  const into = Buffer.alloc(3);
  await connection.readBodyInto(into);
  assert.equal(into.toString(), "abc");
  assert.equal(reused.length, 0);
});

test("a streamed body arrives whole, in order, while its reader is slower than the server", async (t) => {
  const body = pattern(2048 * KiB, 6);
  const server = await scriptedServer(t, (socket) => {
    socket.write(
      Buffer.concat([Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), chunked(body, 100 * KiB)]),
    );
  });
  const { connection, reused } = await connect(t, server.url);
  await connection.request("GET", "/", []);
  const parts: Buffer[] = [];
  for await (const part of connection.bodyStream()) {
    parts.push(part as Buffer);
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.ok(Buffer.concat(parts).equals(body));
  assert.equal(reused.length, 1);
});

/** A server answering Range GETs of `image` with 206; `after` decides what becomes of the connection. */
function rangeReplies(image: Buffer, after: (socket: Socket, request: string) => "keep" | "end" | "drop") {
  const served = new WeakMap<Socket, number>();
  return (socket: Socket, request: string) => {
    const count = (served.get(socket) ?? 0) + 1;
    served.set(socket, count);
    if (after(socket, `${count} ${request}`) === "drop") {
      socket.destroy();
      return;
    }
    const [, start, end] = /range: bytes=(\d+)-(\d+)/i.exec(request)!.map(Number) as [number, number, number];
    const head =
      `HTTP/1.1 206 Partial Content\r\nContent-Length: ${end - start + 1}\r\n` +
      `Content-Range: bytes ${start}-${end}/${image.length}\r\nETag: "e"\r\n\r\n`;
    const bytes = Buffer.concat([Buffer.from(head), image.subarray(start, end + 1)]);
    if (after(socket, `${count} ${request}`) === "end") socket.end(bytes);
    else socket.write(bytes);
  };
}

test("a kept-alive connection the server closes while idle is noticed and not used again", async (t) => {
  const image = pattern(128 * KiB, 7);
  // The server keeps no connection once it has answered, as a server with a short keep-alive does.
  const server = await scriptedServer(
    t,
    rangeReplies(image, () => "end"),
  );
  const input = await openHttpInput(server.url, { blockSize: 64 * KiB, readAhead: 0, cachedBlocks: 1 });
  t.after(() => input.close());
  await new Promise((r) => setTimeout(r, 50));
  const got = await input.readExact(64 * KiB, 64 * KiB);
  assert.ok(got.equals(image.subarray(64 * KiB)));
  assert.deepEqual(
    [input.stats.retries, input.stats.requests, server.requests.length, server.connections],
    [0, 2, 2, 2],
  );
});

test("a request the server drops on a reused connection goes again at once on a new one, not as a retry", async (t) => {
  const image = pattern(128 * KiB, 8);
  // The second request on any connection finds it closed, as when a keep-alive timeout and a request cross.
  const server = await scriptedServer(
    t,
    rangeReplies(image, (_socket, request) => (request.startsWith("2 ") ? "drop" : "keep")),
  );
  const input = await openHttpInput(server.url, { blockSize: 64 * KiB, readAhead: 0, cachedBlocks: 1 });
  t.after(() => input.close());
  const got = await input.readExact(64 * KiB, 64 * KiB);
  assert.ok(got.equals(image.subarray(64 * KiB)));
  assert.equal(input.stats.retries, 0);
  assert.equal(server.connections, 2);
  assert.equal(server.requests.length, 3);
});

test("a caller's header holding a line break is a UsageError and nothing is sent", async (t) => {
  const server = await scriptedServer(t, () => {});
  await assert.rejects(openHttpInput(server.url, { headers: { "x-auth-token": "t\r\nx-evil: 1" } }), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.doesNotMatch(e.message, /x-evil/);
    return true;
  });
  assert.equal(server.connections, 0);
});

test("an abort fails the request under way with the signal's reason", async (t) => {
  const server = await scriptedServer(t, () => {});
  const { connection, controller } = await connect(t, server.url);
  const pending = connection.request("GET", "/", []);
  controller.abort(new Error("stop here"));
  await assert.rejects(pending, /stop here/);
});
