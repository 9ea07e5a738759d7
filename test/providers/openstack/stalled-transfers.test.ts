/**
 * Transfers that stall: a download whose reply stops mid-body is resumed with Range once api_timeout passes,
 * and an upload to a Glance that takes the connection and never reads a byte fails within api_timeout. Keystone
 * is the real test stack's; the image endpoint is a local server misbehaving on purpose
 * (OS_IMAGE_ENDPOINT_OVERRIDE).
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { KeystoneSession } from "../../../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../../../src/providers/openstack/glance-client.js";
import { downloadImage } from "../../../src/providers/openstack/image-download.js";
import { uploadStream } from "../../../src/providers/openstack/streaming-upload.js";
import { requireStack, stackCloud } from "../../helpers/openstack-stack.js";
import { pattern } from "../../helpers/tools.js";

before(requireStack);

const ID = "11111111-2222-3333-4444-555555555555";
const DATA = pattern(256 * 1024, 7);

/** A raw-socket image service: `onFile` decides what each GET of the data does (n counts from 1). */
async function imageService(
  t: { after(fn: () => void): void },
  onFile: (n: number, socket: Socket, range: string | undefined) => void,
): Promise<{ url: string; fileRequests: string[] }> {
  const fileRequests: string[] = [];
  const open = new Set<Socket>();
  const server: Server = createServer((socket) => {
    open.add(socket.on("error", () => undefined));
    let head = "";
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const [requestLine] = head.split("\r\n");
      const range = /\r\nrange: *([^\r]*)/i.exec(head)?.[1];
      head = "";
      if (requestLine!.startsWith(`GET /v2/images/${ID}/file`)) {
        fileRequests.push(range ?? "whole");
        onFile(fileRequests.length, socket, range);
      } else if (requestLine!.startsWith(`GET /v2/images/${ID} `)) {
        const body = JSON.stringify({
          id: ID,
          name: "stalling",
          status: "active",
          visibility: "private",
          tags: [],
          size: DATA.length,
          os_hash_algo: "sha512",
          os_hash_value: createHash("sha512").update(DATA).digest("hex"),
        });
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        );
      }
      if (requestLine!.startsWith("PUT ")) {
        // The upload: not a byte more is read, and no answer comes.
        socket.removeAllListeners("data");
        socket.pause();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    open.forEach((s) => s.destroy());
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, fileRequests };
}

function glanceAt(url: string, apiTimeout: string): GlanceClient {
  const cloud = stackCloud("user-a", "RegionOne", { OS_IMAGE_ENDPOINT_OVERRIDE: url, OS_API_TIMEOUT: apiTimeout });
  return new GlanceClient(new KeystoneSession(cloud));
}

test("a download that stalls mid-body is resumed with Range after api_timeout, and verifies", async (t) => {
  const half = DATA.length / 2;
  const service = await imageService(t, (n, socket, range) => {
    if (n === 1) {
      // Headers and half the body, then silence with the connection open.
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${DATA.length}\r\n\r\n`);
      socket.write(DATA.subarray(0, half));
      return;
    }
    const from = Number(/bytes=(\d+)-/.exec(range ?? "")?.[1] ?? 0);
    const rest = DATA.subarray(from);
    socket.write(
      `HTTP/1.1 206 Partial Content\r\ncontent-length: ${rest.length}\r\n` +
        `content-range: bytes ${from}-${DATA.length - 1}/${DATA.length}\r\n\r\n`,
    );
    socket.write(rest);
  });
  const started = Date.now();
  const chunks: Uint8Array[] = [];
  let resumes = 0;
  for await (const c of downloadImage(glanceAt(service.url, "1"), ID, { onProgress: (p) => (resumes = p.resumes) })) {
    chunks.push(c);
  }
  assert.ok(Buffer.concat(chunks).equals(DATA), "the bytes are the image's");
  assert.equal(resumes, 1);
  assert.deepEqual(service.fileRequests, ["whole", `bytes=${half}-`]);
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});

test("an upload whose server never reads fails within api_timeout, naming the setting", async (t) => {
  const service = await imageService(t, () => undefined);
  const glance = glanceAt(service.url, "1");
  // More than the socket buffers hold, so the send itself stalls.
  const data = (async function* () {
    for (let i = 0; i < 64; i++) yield Buffer.alloc(1024 * 1024);
  })();
  const started = Date.now();
  await assert.rejects(
    uploadStream(glance.service, { path: `/v2/images/${ID}/file`, callName: "PUT /v2/images/{id}/file", data }),
    /glance PUT \/v2\/images\/\{id\}\/file: no reply: 127\.0\.0\.1:\d+ sent nothing for 1 s \(api_timeout\)/,
  );
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});
