/**
 * Retries: idempotent calls are repeated on transient failures (503, a dropped connection) with backoff;
 * a POST never is. Keystone is the real test stack's; the "image" endpoint is a local server that fails on
 * purpose, reached through `OS_IMAGE_ENDPOINT_OVERRIDE`. Plus the pure pieces: redaction and messages.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { KeystoneSession } from "../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../src/providers/openstack/glance-client.js";
import { OpenStackError, redactSecrets } from "../src/providers/openstack/errors.js";
import { serviceMessage } from "../src/providers/openstack/service-client.js";
import { requireStack, stackCloud } from "./helpers/openstack-stack.js";

before(requireStack);

async function failingImageService(
  t: { after(fn: () => Promise<void>): void },
  handler: (n: number, req: IncomingMessage, res: ServerResponse) => void,
) {
  let requests = 0;
  const server = createServer((req, res) => handler(++requests, req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const session = new KeystoneSession(stackCloud("user-a", "RegionOne", { OS_IMAGE_ENDPOINT_OVERRIDE: url }), {
    retryPolicy: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 100 },
  });
  return { glance: new GlanceClient(session), requests: () => requests };
}

const IMAGE = {
  id: "11111111-2222-3333-4444-555555555555",
  name: "x",
  status: "active",
  visibility: "private",
  tags: [],
};

test("a GET is retried on 503 and on a dropped connection, then succeeds", async (t) => {
  const service = await failingImageService(t, (n, _req, res) => {
    if (n === 1) return res.writeHead(503).end("busy");
    if (n === 2) return res.socket?.destroy();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(IMAGE));
  });
  assert.equal((await service.glance.getImage(IMAGE.id)).name, "x");
  assert.equal(service.requests(), 3);
});

test("a GET gives up after the policy's attempts with the last status in the error", async (t) => {
  const service = await failingImageService(t, (_n, _req, res) => res.writeHead(503).end("<h1>busy</h1>"));
  await assert.rejects(service.glance.getImage(IMAGE.id), /glance GET \/v2\/images\/\{id\} → HTTP 503: busy/);
  assert.equal(service.requests(), 4);
});

test("a POST is never retried, and a 500 is not transient", async (t) => {
  const service = await failingImageService(t, (_n, _req, res) => res.writeHead(503).end("busy"));
  await assert.rejects(service.glance.createImage({ name: "x", diskFormat: "raw" }), /HTTP 503/);
  assert.equal(service.requests(), 1);
  const broken = await failingImageService(t, (_n, _req, res) => res.writeHead(500).end("bug"));
  await assert.rejects(
    broken.glance.getImage(IMAGE.id),
    (e: unknown) => e instanceof OpenStackError && e.status === 500,
  );
  assert.equal(broken.requests(), 1);
});

test("secrets are redacted and webob error pages become one readable line", () => {
  const token = "gAAAAABpZ" + "x".repeat(150);
  assert.equal(redactSecrets(`bad token ${token} here`), "bad token *** here");
  assert.equal(redactSecrets('{"password": "hunter2", "name": "a"}'), '{"password": "***", "name": "a"}');
  assert.equal(
    serviceMessage(
      "<html><head><title>400 Bad Request</title></head><body><h1>400 Bad Request</h1>&#x27;x&#x27; is wrong</body></html>",
    ),
    "400 Bad Request 'x' is wrong",
  );
  assert.equal(serviceMessage('{"itemNotFound": {"message": "Image not found.", "code": 404}}'), "Image not found.");
});
