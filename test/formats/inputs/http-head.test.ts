import { test } from "node:test";
import assert from "node:assert/strict";
import { MalformedHeadError, checkRequestField, parseResponseHead } from "../../../src/formats/inputs/http-head.js";

const head = (...lines: string[]) => lines.join("\r\n");

test("a 206 head: status, reason, fields in lower case, repeated ones joined, length framing", () => {
  const h = parseResponseHead(
    head("HTTP/1.1 206 Partial Content", "Content-Length: 42", 'ETag: "x"', "X-A: 1", "x-a:  2 "),
    "GET",
  );
  assert.equal(h.status, 206);
  assert.equal(h.statusText, "Partial Content");
  assert.equal(h.headers.get("etag"), '"x"');
  assert.equal(h.headers.get("x-a"), "1, 2");
  assert.deepEqual(h.framing, { kind: "length", length: 42 });
  assert.equal(h.keepAlive, true);
});

test("framing: chunked, to the connection's end, none for 204/304/HEAD; a repeated equal length is one", () => {
  assert.deepEqual(parseResponseHead(head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "GET").framing, {
    kind: "chunked",
  });
  assert.deepEqual(parseResponseHead("HTTP/1.1 200 OK", "GET").framing, { kind: "close" });
  assert.deepEqual(parseResponseHead(head("HTTP/1.1 204 No Content"), "GET").framing, { kind: "none" });
  assert.deepEqual(parseResponseHead(head("HTTP/1.1 304 Not Modified", "Content-Length: 9"), "GET").framing, {
    kind: "none",
  });
  assert.deepEqual(parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 9"), "HEAD").framing, { kind: "none" });
  assert.deepEqual(
    parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 7, 7", "Content-Length: 7"), "GET").framing,
    { kind: "length", length: 7 },
  );
});

test("keep-alive: HTTP/1.1 unless Connection: close; HTTP/1.0 only with keep-alive", () => {
  assert.equal(parseResponseHead(head("HTTP/1.1 200 OK", "Connection: Keep-Alive, Close"), "GET").keepAlive, false);
  assert.equal(parseResponseHead(head("HTTP/1.0 200 OK", "Content-Length: 1"), "GET").keepAlive, false);
  assert.equal(parseResponseHead(head("HTTP/1.0 200 OK", "Connection: keep-alive"), "GET").keepAlive, true);
});

test("ambiguous or malformed heads are refused (RFC 9112 §6.3, §5.2)", () => {
  const refused: [string, RegExp][] = [
    [head("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked"), /both Transfer-Encoding/],
    [head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6"), /invalid Content-Length/],
    [head("HTTP/1.1 200 OK", "Content-Length: -1"), /invalid Content-Length/],
    [head("HTTP/1.1 200 OK", "Content-Length: 1e3"), /invalid Content-Length/],
    [head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"), /unsupported Transfer-Encoding/],
    [head("HTTP/1.1 200 OK", "X-A: 1", " folded"), /malformed header line/],
    [head("HTTP/1.1 200 OK", "No colon"), /malformed header line/],
    [head("HTTP/1.1 200 OK", "X-A: a\x01b"), /malformed header line/],
    [head("HTTP/2 200", "X: 1"), /not an HTTP\/1.x status line/],
    ["ICY 200 OK", /not an HTTP\/1.x status line/],
  ];
  for (const [text, message] of refused) {
    assert.throws(
      () => parseResponseHead(text, "GET"),
      (e: unknown) => {
        assert.ok(e instanceof MalformedHeadError, String(e));
        assert.match(e.message, message);
        return true;
      },
    );
  }
});

test("request fields: no line break can smuggle a header; the refusal does not quote the value", () => {
  checkRequestField("x-auth-token", "gAAAAA-token_value.=");
  assert.throws(
    () => checkRequestField("x-auth-token", "secret\r\nx-evil: 1"),
    (e: unknown) => {
      assert.ok(e instanceof MalformedHeadError);
      assert.doesNotMatch(e.message, /secret/);
      return true;
    },
  );
  assert.throws(() => checkRequestField("bad name", "v"), MalformedHeadError);
  assert.throws(() => checkRequestField("x", "snow\u2603man"), MalformedHeadError);
});
