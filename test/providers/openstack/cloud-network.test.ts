/**
 * CloudNetwork against real local servers: an https server with a private CA made by openssl (right CA,
 * wrong CA, wrong host name, no check, client certificates), a CONNECT proxy that alone resolves the
 * target's name (so the direct path cannot work), and sockets that accept and never answer or stall mid-body.
 * Every path is tried for fetch (Keystone, services, downloads) and for node:http uploads.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { request as httpRequest, createServer as createHttpServer, type IncomingMessage } from "node:http";
import { request as httpsRequest, createServer as createHttpsServer } from "node:https";
import { connect, createServer as createTcpServer, type Server, type Socket } from "node:net";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { CloudNetwork, proxyFor } from "../../../src/providers/openstack/cloud-network.js";
import type { NetworkSettings } from "../../../src/providers/openstack/cloud-config.js";
import { makeTestPki, PROXY_ONLY_HOST, type TestPki } from "../../helpers/test-ca.js";

let pki: TestPki;
before(async () => {
  pki = await makeTestPki(await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-pki-")));
});

type Closer = { after(fn: () => Promise<void> | void): void };

async function listen(t: Closer, server: Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as { port: number }).port;
}

/** An https server answering "hello <client CN or anonymous>" to GET and the byte count to PUT. */
async function httpsServer(t: Closer, opts: { requireClientCert?: boolean } = {}): Promise<number> {
  const server = createHttpsServer(
    {
      cert: pki.serverCert,
      key: pki.serverKey,
      ca: pki.ca,
      requestCert: opts.requireClientCert ?? false,
      rejectUnauthorized: opts.requireClientCert ?? false,
    },
    (req, res) => answer(req, res),
  );
  return listen(t, server);
}

function answer(req: IncomingMessage, res: import("node:http").ServerResponse): void {
  let bytes = 0;
  req.on("data", (c: Buffer) => (bytes += c.length));
  req.on("end", () => {
    const peer = (req.socket as TLSSocket).getPeerCertificate?.();
    const who = peer && peer.subject ? peer.subject.CN : "anonymous";
    res.end(req.method === "PUT" ? `got ${bytes}` : `hello ${who}`);
  });
}

function network(settings: Partial<NetworkSettings>, env: Record<string, string> = {}): CloudNetwork {
  return new CloudNetwork("testcloud", { verify: true, ...settings }, env);
}

const ca = (path: string) => ({ path, from: "a test" });

/** A PUT of `body` through node:http with the network's connection, as streaming-upload.ts sends one. */
async function upload(net: CloudNetwork, url: string, body: Buffer): Promise<string> {
  const u = new URL(url);
  const send = u.protocol === "https:" ? httpsRequest : httpRequest;
  const req = send(u, { method: "PUT", createConnection: net.createConnection(u) as never });
  req.end(body);
  const [res] = (await once(req, "response")) as [IncomingMessage];
  let text = "";
  for await (const c of res) text += String(c);
  return text;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail("the request succeeded");
}

test("the cloud's CA is trusted, for fetch and for uploads", async (t) => {
  const port = await httpsServer(t);
  const net = network({ cacert: ca(pki.caFile) });
  const r = await net.fetch(`https://127.0.0.1:${port}/`);
  assert.equal(await r.text(), "hello anonymous");
  assert.equal(await upload(net, `https://localhost:${port}/x`, Buffer.alloc(100_000)), "got 100000");
});

test("a certificate from another CA fails, naming the host and the CA checked against", async (t) => {
  const port = await httpsServer(t);
  for (const [net, caText] of [
    [network({ cacert: ca(pki.otherCaFile) }), `the CA file ${pki.otherCaFile} (from a test)`],
    [network({}), "Node's bundled CAs"],
  ] as const) {
    const url = `https://127.0.0.1:${port}/`;
    const message = net.describeFailure(await failure(net.fetch(url)), url);
    assert.match(message, new RegExp(`certificate of 127\\.0\\.0\\.1:${port} is not trusted`));
    assert.ok(message.includes(caText), message);
    const up = net.describeFailure(await failure(upload(net, url, Buffer.from("x"))), url);
    assert.ok(up.includes(caText) && up.includes(`127.0.0.1:${port}`), up);
  }
});

test("a certificate for another host name fails, naming the host and the CA", async (t) => {
  const port = await httpsServer(t);
  const net = network({ cacert: ca(pki.caFile) });
  // The server's certificate names 127.0.0.1, localhost and the proxy-only name, not 127.0.0.2.
  const url = `https://127.0.0.2:${port}/`;
  const server = createTcpServer((s) => s.pipe(connect(port, "127.0.0.1")).pipe(s));
  server.listen(port, "127.0.0.2");
  await once(server, "listening");
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const message = net.describeFailure(await failure(net.fetch(url)), url);
  assert.match(message, new RegExp(`certificate of 127\\.0\\.0\\.2:${port} is not for that host name`));
  assert.ok(message.includes(pki.caFile), message);
});

test("verify: false accepts any certificate and warns once per cloud", async (t) => {
  const port = await httpsServer(t);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  t.after(() => process.off("warning", onWarning));
  const net = network({ verify: false, cacert: ca(pki.otherCaFile) });
  assert.equal(await (await net.fetch(`https://127.0.0.1:${port}/`)).text(), "hello anonymous");
  assert.equal(await upload(net, `https://127.0.0.1:${port}/`, Buffer.from("abc")), "got 3");
  network({ verify: false }); // the same cloud opened again (a migrate within one cloud): no second warning
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(warnings.filter((w) => w.includes('cloud "testcloud": TLS certificates are not checked')).length, 1);
});

test("a client certificate is presented when the server asks for one", async (t) => {
  const port = await httpsServer(t, { requireClientCert: true });
  const url = `https://127.0.0.1:${port}/`;
  const anonymous = network({ cacert: ca(pki.caFile) });
  await failure(anonymous.fetch(url).then((r) => r.text()));
  const withCert = network({ cacert: ca(pki.caFile), cert: pki.clientCertFile, key: pki.clientKeyFile });
  assert.equal(await (await withCert.fetch(url)).text(), "hello client");
  assert.equal(await upload(withCert, url, Buffer.alloc(5000)), "got 5000");
});

test("unreadable or non-PEM TLS files are refused up front, naming the file", () => {
  assert.throws(
    () => network({ cacert: ca("/nonexistent/ca.pem") }),
    /testcloud.*\/nonexistent\/ca\.pem cannot be read/,
  );
  assert.throws(() => network({ cert: pki.clientCertFile }), /needs its key/);
  assert.throws(() => network({ key: "/etc/hostname" }), /\/etc\/hostname is not PEM/);
});

/** A CONNECT proxy that maps PROXY_ONLY_HOST to 127.0.0.1 and records every tunnel's target. */
async function connectProxy(t: Closer): Promise<{ url: string; tunnels: string[] }> {
  const tunnels: string[] = [];
  const open = new Set<Socket>();
  const server = createHttpServer((_req, res) => res.writeHead(405).end());
  // Tunnels leave the server's books: end them ourselves, or close() waits for them.
  t.after(() => open.forEach((s) => s.destroy()));
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    tunnels.push(req.url ?? "");
    open.add(client);
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host === PROXY_ONLY_HOST ? "127.0.0.1" : host!);
    open.add(upstream);
    upstream.once("connect", () => {
      client.write("HTTP/1.1 200 Connection established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on("error", () => client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
    client.on("error", () => upstream.destroy());
  });
  const port = await listen(t, server);
  return { url: `http://user:proxy-secret@127.0.0.1:${port}`, tunnels };
}

test("HTTPS_PROXY and HTTP_PROXY carry every request; the direct path does not exist", async (t) => {
  const proxy = await connectProxy(t);
  const tlsPort = await httpsServer(t);
  const plain = createHttpServer((req, res) => answer(req, res));
  const plainPort = await listen(t, plain);
  const net = network({ cacert: ca(pki.caFile) }, { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url });
  const tlsUrl = `https://${PROXY_ONLY_HOST}:${tlsPort}/`;
  const plainUrl = `http://${PROXY_ONLY_HOST}:${plainPort}/`;
  // The name resolves nowhere: without the proxy the request cannot even start.
  assert.match(
    network({ cacert: ca(pki.caFile) }).describeFailure(await failure(network({}).fetch(plainUrl)), plainUrl),
    /ENOTFOUND|EAI_AGAIN/,
  );
  assert.equal(await (await net.fetch(tlsUrl)).text(), "hello anonymous");
  assert.equal(await (await net.fetch(plainUrl)).text(), "hello anonymous");
  assert.equal(await upload(net, tlsUrl, Buffer.alloc(70_000)), "got 70000");
  assert.equal(await upload(net, plainUrl, Buffer.alloc(10)), "got 10");
  assert.deepEqual(
    new Set(proxy.tunnels),
    new Set([`${PROXY_ONLY_HOST}:${tlsPort}`, `${PROXY_ONLY_HOST}:${plainPort}`]),
  );
  // The certificate checked through the tunnel is the cloud's own, so a wrong CA still fails, and says so
  // without the proxy's password.
  const wrong = network({ cacert: ca(pki.otherCaFile) }, { HTTPS_PROXY: proxy.url });
  const message = wrong.describeFailure(await failure(wrong.fetch(tlsUrl)), tlsUrl);
  assert.match(message, /is not trusted.*through the proxy http:\/\/127\.0\.0\.1:\d+\)$/);
  assert.ok(!message.includes("proxy-secret"), message);
});

test("NO_PROXY sends matching hosts direct; the rules follow curl's", async (t) => {
  const proxy = await connectProxy(t);
  const port = await httpsServer(t);
  const net = network({ cacert: ca(pki.caFile) }, { https_proxy: proxy.url, no_proxy: "example.org,127.0.0.1" });
  assert.equal(await (await net.fetch(`https://127.0.0.1:${port}/`)).text(), "hello anonymous");
  assert.deepEqual(proxy.tunnels, []);
  const env = { HTTPS_PROXY: "http://p:3128", NO_PROXY: ".corp.example, cloud.test:5000, [::1]" };
  assert.equal(proxyFor("https:", "keystone.corp.example", 443, env), undefined);
  assert.equal(proxyFor("https:", "cloud.test", 5000, env), undefined);
  assert.equal(proxyFor("https:", "api.cloud.test", 5000, env), undefined);
  assert.equal(proxyFor("https:", "::1", 9292, env), undefined);
  assert.equal(proxyFor("https:", "cloud.test", 9292, env)?.host, "p:3128");
  assert.equal(proxyFor("https:", "notcloud.test", 5000, env)?.host, "p:3128");
  assert.equal(proxyFor("http:", "cloud.test", 9292, env), undefined, "HTTPS_PROXY is not used for http");
  assert.equal(proxyFor("https:", "anything", 1, { HTTPS_PROXY: "http://p:1", NO_PROXY: "*" }), undefined);
});

test("a proxy that refuses the tunnel is named in the error", async (t) => {
  const refusing = createHttpServer();
  refusing.on("connect", (_req, client: Socket) => client.end("HTTP/1.1 403 Forbidden\r\n\r\n"));
  const port = await listen(t, refusing);
  const net = network({}, { HTTP_PROXY: `http://127.0.0.1:${port}` });
  const url = "http://127.0.0.1:5999/";
  assert.match(
    net.describeFailure(await failure(net.fetch(url)), url),
    /the proxy http:\/\/127\.0\.0\.1:\d+ refused the tunnel: HTTP 403/,
  );
});

/** A server that accepts connections and never says a word; `stallAfter` sends a head and part of a body first. */
async function silentServer(t: Closer, stallAfter?: string): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
    if (stallAfter) s.once("data", () => s.write(stallAfter));
  });
  t.after(() => sockets.forEach((s) => s.destroy()));
  return listen(t, server);
}

test("a server that accepts and never answers fails within api_timeout", async (t) => {
  const port = await silentServer(t);
  const net = network({ apiTimeoutSeconds: 0.5 });
  const url = `http://127.0.0.1:${port}/v3`;
  const started = Date.now();
  const message = net.describeFailure(await failure(net.fetch(url)), url);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 450 && elapsed < 3000, `failed after ${elapsed} ms`);
  assert.equal(message, `127.0.0.1:${port} sent no reply within 0.5 s (api_timeout)`);
});

test("a reply that stalls mid-body fails within api_timeout (the download then resumes with Range)", async (t) => {
  const port = await silentServer(t, "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nfirst bytes");
  const net = network({ apiTimeoutSeconds: 0.5 });
  const url = `http://127.0.0.1:${port}/file`;
  const r = await net.fetch(url);
  const started = Date.now();
  const e = await failure(r.arrayBuffer());
  assert.ok(Date.now() - started < 3000);
  assert.match(net.describeFailure(e, url), /sent nothing for 0\.5 s \(api_timeout\)/);
});

test("a proxy that accepts and never answers the CONNECT fails within the connect timeout", async (t) => {
  const port = await silentServer(t);
  const net = network({ apiTimeoutSeconds: 0.5 }, { HTTPS_PROXY: `http://127.0.0.1:${port}` });
  const url = "https://cloud.example:5000/v3";
  const started = Date.now();
  const message = net.describeFailure(await failure(net.fetch(url)), url);
  assert.ok(Date.now() - started < 3000);
  assert.match(message, /could not connect to cloud\.example:5000 within 0\.5 s \(through the proxy/);
});
