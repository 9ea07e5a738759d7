/**
 * Glance's interoperable import against the real test stack (test/infra/openstack/aio.sh, Glance 25.1 = Zed):
 * glance-direct; web-download of a qcow2 this test serves over HTTP on 127.0.0.1:$GLANCE_WEB_DOWNLOAD_PORT
 * (the one port RegionOne's import filter admits); a 404 URL and a URL the filter refuses, each a clear
 * error with nothing left behind; glance-download of an image from RegionOne into RegionTwo (RegionTwo
 * advertises it) and the "not advertised" error from RegionOne (which does not).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { KeystoneSession } from "../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../src/providers/openstack/glance-client.js";
import { downloadImage } from "../src/providers/openstack/image-download.js";
import { OpenStackError } from "../src/providers/openstack/errors.js";
import { OpenStackProvider } from "../src/providers/openstack/openstack-provider.js";
import {
  ImportFailedError,
  ImportMethodUnavailableError,
  importImage,
  importMethods,
  importRequestBody,
  redactUrl,
} from "../src/providers/openstack/glance-image-import.js";
import {
  copyImageBetweenRegions,
  importImageFromUrl,
  serverSideCopyPlan,
} from "../src/providers/openstack/glance-import-provider.js";
import { chunksOf, collect, requireStack, stackCloud } from "./helpers/openstack-stack.js";
import { makeRaw, pattern, qemuImg, scratch } from "./helpers/tools.js";

const MiB = 2 ** 20;
const WEB_DOWNLOAD_PORT = Number(process.env.GLANCE_WEB_DOWNLOAD_PORT ?? 9280);
const uniqueName = (what: string) => `chromo-test-${what}-${randomUUID().slice(0, 8)}`;
const sha512 = (b: Buffer) => createHash("sha512").update(b).digest("hex");

function glanceAs(user: "user-a" | "user-b", region = "RegionOne") {
  return new GlanceClient(new KeystoneSession(stackCloud(user, region)));
}

/** The files this test serves to Glance, by path; every request is logged. */
const served = new Map<string, Buffer>();
/** Requests to these paths get headers and a first chunk, then nothing: a stalled source. */
const stalled = new Set<string>();
const stalledSockets = new Set<import("node:net").Socket>();
const requests: string[] = [];
let server: Server;

before(async () => {
  await requireStack();
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (stalled.has(req.url ?? "")) {
      stalledSockets.add(req.socket);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 64 * MiB });
      res.write(Buffer.alloc(64 * 1024));
      return;
    }
    const body = served.get(req.url ?? "");
    if (!body) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not here\n");
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    if (req.method === "HEAD") res.end();
    else res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(WEB_DOWNLOAD_PORT, "127.0.0.1", resolve);
  });
});

after(
  () =>
    new Promise<void>((resolve) => {
      for (const s of stalledSockets) s.destroy();
      server.close(() => resolve());
    }),
);

test("the import methods each region advertises, as aio.sh configures them", async () => {
  assert.deepEqual(await importMethods(glanceAs("user-a")), ["glance-direct", "web-download", "copy-image"]);
  assert.deepEqual(await importMethods(glanceAs("user-a", "RegionTwo")), [
    "glance-direct",
    "web-download",
    "copy-image",
    "glance-download",
  ]);
});

test("the import request bodies are those of the Image API reference", () => {
  assert.deepEqual(importRequestBody({ method: "glance-direct" }), { method: { name: "glance-direct" } });
  assert.deepEqual(importRequestBody({ method: "web-download", uri: "https://example.org/d.qcow2" }), {
    method: { name: "web-download", uri: "https://example.org/d.qcow2" },
  });
  assert.deepEqual(
    importRequestBody({ method: "glance-download", imageId: "1d8d5b3c-3a3c-4d2e-9a44-bb2c0e0f7a11", region: "R1" }),
    {
      method: {
        name: "glance-download",
        glance_image_id: "1d8d5b3c-3a3c-4d2e-9a44-bb2c0e0f7a11",
        glance_region: "R1",
        glance_service_interface: "public",
      },
    },
  );
  assert.equal(redactUrl("https://joe:secret@example.org/x"), "https://***@example.org/x");
});

test("glance-direct through importImage: staged, imported, size and sha512 checked", async (t) => {
  const glance = glanceAs("user-a");
  const data = pattern(3 * MiB + 7, 41);
  const progress: number[] = [];
  const image = await importImage(
    glance,
    { name: uniqueName("direct"), diskFormat: "raw" },
    { method: "glance-direct" },
    { data: chunksOf(data), size: data.length, onProgress: (p) => progress.push(p.bytes) },
  );
  t.after(() => glance.deleteImage(image.id, { ignoreMissing: true }));
  assert.equal(image.status, "active");
  assert.equal(image.os_hash_value, sha512(data));
  assert.equal(progress.at(-1), data.length);
});

test("web-download: Glance fetches a qcow2 from the test's HTTP server; the download matches", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, 32 * MiB, [
    { offset: 0, data: pattern(MiB, 42) },
    { offset: 20 * MiB, data: pattern(3 * MiB, 43) },
  ]);
  const qcow2 = join(dir, "disk.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", raw, qcow2);
  const bytes = await readFile(qcow2);
  const path = `/images/${randomUUID()}.qcow2`;
  served.set(path, bytes);
  t.after(() => void served.delete(path));

  const provider = new OpenStackProvider(stackCloud("user-a"));
  let createdId: string | undefined;
  const image = await importImageFromUrl(
    provider,
    { name: uniqueName("web-download"), diskFormat: "qcow2", properties: { chromogenic_test: "web" } },
    `http://127.0.0.1:${WEB_DOWNLOAD_PORT}${path}`,
    {
      onCreated: (id) => void (createdId = id),
      expect: { size: bytes.length, hash: { algorithm: "sha512", value: sha512(bytes) } },
    },
  );
  t.after(() => provider.deleteImage(image.id));
  assert.equal(createdId, image.id);
  assert.equal(image.state, "ready");
  assert.equal(image.visibility, "private");
  assert.equal(image.sizeBytes, bytes.length);
  assert.equal(image.properties.chromogenic_test, "web");
  assert.ok(requests.includes(`GET ${path}`), "Glance itself fetched the file from the test's server");
  const downloaded = await collect(downloadImage(provider.glance, image.id));
  assert.ok(downloaded.equals(bytes), "the image's bytes are the served qcow2's");
});

test("web-download of a URL that answers 404: a clear error, and no image left queued", async () => {
  const glance = glanceAs("user-a");
  const name = uniqueName("web-404");
  const uri = `http://127.0.0.1:${WEB_DOWNLOAD_PORT}/missing/${randomUUID()}.qcow2`;
  let createdId: string | undefined;
  await assert.rejects(
    importImage(
      glance,
      { name, diskFormat: "qcow2" },
      { method: "web-download", uri },
      { onCreated: (id) => void (createdId = id) },
    ),
    (e: unknown) =>
      e instanceof ImportFailedError &&
      e.message.includes(`Glance could not fetch ${uri} (from this machine it answers HTTP 404)`) &&
      /cloud "envvars": glance web-download import of image [0-9a-f-]{36}: Glance's task [0-9a-f-]{36} failed/.test(
        e.message,
      ),
  );
  assert.ok(createdId, "a record had been created");
  await assert.rejects(glance.getImage(createdId), (e: unknown) => e instanceof OpenStackError && e.status === 404);
  assert.equal(await glance.findImage(name), undefined);
});

test("web-download of a URL Glance's import filter refuses: Glance's 400, and nothing left", async () => {
  const glance = glanceAs("user-a");
  const name = uniqueName("web-filtered");
  // Only the web-download port is allowed on 127.0.0.1; Keystone's port is not.
  await assert.rejects(
    importImage(glance, { name, diskFormat: "qcow2" }, { method: "web-download", uri: "http://127.0.0.1:5000/v3" }),
    (e: unknown) =>
      e instanceof OpenStackError &&
      e.status === 400 &&
      /glance POST \/v2\/images\/\{id\}\/import → HTTP 400: .*URI for web-download does not pass filtering/.test(
        e.message,
      ),
  );
  assert.equal(await glance.findImage(name), undefined);
  await assert.rejects(
    importImage(glance, { name, diskFormat: "qcow2" }, { method: "web-download", uri: "file:///etc/passwd" }),
    /web-download fetches http\(s\) URLs only, not file:/,
  );
  assert.equal(await glance.findImage(name), undefined);
});

test("glance-download: RegionTwo copies user A's RegionOne image server-side, verified", async (t) => {
  const source = new OpenStackProvider(stackCloud("user-a", "RegionOne"));
  const target = new OpenStackProvider(stackCloud("user-a", "RegionTwo"));
  const data = pattern(6 * MiB + 3, 44);
  const original = await source.glance.uploadImage(
    { name: uniqueName("gd-source"), diskFormat: "raw", properties: { os_distro: "debian" } },
    chunksOf(data),
    { size: data.length },
  );
  t.after(() => source.deleteImage(original.id));

  const plan = await serverSideCopyPlan(source, target, original.id);
  assert.equal(plan.possible, true, plan.possible ? "" : plan.reason);

  const name = uniqueName("gd-copy");
  const copy = await copyImageBetweenRegions(source, target, original.id, {
    name,
    properties: { source_image: original.id },
  });
  t.after(() => target.deleteImage(copy.id));
  assert.notEqual(copy.id, original.id);
  assert.equal(copy.state, "ready");
  assert.equal(copy.diskFormat, "raw");
  assert.equal(copy.visibility, "private");
  assert.equal(copy.sizeBytes, data.length);
  assert.deepEqual(copy.hash, { algorithm: "sha512", value: sha512(data) });
  assert.equal(copy.properties.source_image, original.id);
  // Glance copies os_distro (its default glance_download_properties) from the source.
  assert.equal(copy.properties.os_distro, "debian");
  // It lives in RegionTwo's own Glance, and its bytes are the source's.
  await assert.rejects(source.glance.getImage(copy.id), /HTTP 404/);
  assert.ok((await collect(downloadImage(target.glance, copy.id))).equals(data));
});

test("glance-download into RegionOne, which does not advertise it: names the method and what is offered", async (t) => {
  const regionTwo = new OpenStackProvider(stackCloud("user-a", "RegionTwo"));
  const regionOne = new OpenStackProvider(stackCloud("user-a", "RegionOne"));
  const data = pattern(MiB, 45);
  const original = await regionTwo.glance.uploadImage({ name: uniqueName("gd-r2"), diskFormat: "raw" }, chunksOf(data));
  t.after(() => regionTwo.deleteImage(original.id));

  const plan = await serverSideCopyPlan(regionTwo, regionOne, original.id);
  assert.deepEqual(plan, {
    possible: false,
    reason: "the destination does not offer glance-download (it offers: glance-direct, web-download, copy-image)",
  });
  const name = uniqueName("gd-refused");
  await assert.rejects(
    copyImageBetweenRegions(regionTwo, regionOne, original.id, { name }),
    (e: unknown) =>
      e instanceof ImportMethodUnavailableError &&
      e.message ===
        'cloud "envvars": glance GET /v2/info/import: the cloud does not offer the "glance-download" image import ' +
          "method (it offers: glance-direct, web-download, copy-image)",
  );
  assert.equal(await regionOne.glance.findImage(name), undefined);
});

test("glance-download is not planned when the destination's project cannot read the source image", async (t) => {
  const source = new OpenStackProvider(stackCloud("user-a", "RegionOne"));
  const otherProject = new OpenStackProvider(stackCloud("user-b", "RegionTwo"));
  const original = await source.glance.uploadImage(
    { name: uniqueName("gd-private"), diskFormat: "raw" },
    chunksOf(pattern(4096, 46)),
  );
  t.after(() => source.deleteImage(original.id));
  const plan = await serverSideCopyPlan(source, otherProject, original.id);
  assert.equal(plan.possible, false);
  assert.match(
    plan.possible ? "" : plan.reason,
    new RegExp(`the destination's credentials cannot read image ${original.id} in region RegionOne: .*HTTP 404`),
  );
});

test("a web-download that stalls ends at the time limit with a clear error; the importing record is deleted", async (t) => {
  const glance = glanceAs("user-a");
  const path = `/stalled/${randomUUID()}.raw`;
  stalled.add(path);
  t.after(() => {
    stalled.delete(path);
    for (const s of stalledSockets) s.destroy();
  });
  const name = uniqueName("web-stalled");
  let createdId: string | undefined;
  await assert.rejects(
    importImage(
      glance,
      { name, diskFormat: "raw" },
      { method: "web-download", uri: `http://127.0.0.1:${WEB_DOWNLOAD_PORT}${path}` },
      { timeoutMs: 3000, onCreated: (id) => void (createdId = id) },
    ),
    /glance web-download import of image [0-9a-f-]{36}: still importing after 3 s/,
  );
  assert.ok(requests.includes(`GET ${path}`), "Glance had started fetching");
  await assert.rejects(glance.getImage(createdId!), /HTTP 404/);
  assert.equal(await glance.findImage(name), undefined);
});
