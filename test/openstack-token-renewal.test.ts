/**
 * A token that expires during a long operation is renewed transparently. The test stack's Keystone issues
 * short tokens (KEYSTONE_TOKEN_EXPIRATION, 90 s by default in test/infra/openstack/aio.sh), so this takes
 * about that long: a download starts, stalls past the token's expiry, loses its connection, and must resume
 * with a new token.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { KeystoneSession, sleep } from "../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../src/providers/openstack/glance-client.js";
import { downloadImage } from "../src/providers/openstack/image-download.js";
import { chunksOf, requireStack, stackCloud, startTcpProxy } from "./helpers/openstack-stack.js";
import { pattern } from "./helpers/tools.js";

before(requireStack);

test("a download that outlives its token resumes with a renewed one", { timeout: 10 * 60_000 }, async (t) => {
  const owner = new GlanceClient(new KeystoneSession(stackCloud("user-a")));
  const data = pattern(32 * 2 ** 20 + 3, 31);
  const image = await owner.uploadImage(
    { name: `chromo-test-renewal-${randomUUID().slice(0, 8)}`, diskFormat: "raw" },
    chunksOf(data),
    { size: data.length },
  );
  t.after(() => owner.deleteImage(image.id, { ignoreMissing: true }));

  const proxy = await startTcpProxy({ host: "127.0.0.1", port: 9292 });
  t.after(() => proxy.close());
  const session = new KeystoneSession(stackCloud("user-a", "RegionOne", { OS_IMAGE_ENDPOINT_OVERRIDE: proxy.url }));
  const glance = new GlanceClient(session);
  const firstToken = await session.token();
  const firstExpiry = await session.expiresAt();
  assert.ok(
    firstExpiry - Date.now() < 10 * 60_000,
    "the test stack must issue short tokens: start it with KEYSTONE_TOKEN_EXPIRATION (default 90 s)",
  );

  let received = 0;
  let stalled = false;
  const hash = createHash("sha512");
  for await (const chunk of downloadImage(glance, image.id)) {
    hash.update(chunk);
    received += chunk.length;
    if (!stalled) {
      stalled = true;
      // Stall until the token is dead, then lose the connection: the resume needs a new token.
      await sleep(Math.max(0, firstExpiry - Date.now()) + 2000);
      proxy.dropAll();
    }
  }
  assert.equal(received, data.length);
  assert.equal(hash.digest("hex"), image.os_hash_value);
  assert.ok(proxy.connections >= 2, "the download resumed on a new connection");
  assert.ok(session.authentications >= 2, "the token was renewed");
  assert.notEqual(await session.token(), firstToken);
  // And the first token really is expired: Glance refuses it.
  const stale = await fetch(`http://127.0.0.1:9292/v2/images/${image.id}`, { headers: { "x-auth-token": firstToken } });
  await stale.body?.cancel();
  assert.equal(stale.status, 401);
});
