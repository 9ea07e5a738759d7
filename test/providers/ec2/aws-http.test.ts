/**
 * TLS for the S3 and EC2 clients, against a local https server with a private CA made by openssl: the CA
 * file trusted (OS_CACERT / AWS_CA_BUNDLE), an unrelated CA refused with a sentence naming the URL and the
 * certificate problem, no checking at all on the user's word, and an unreadable CA file as a config error.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:https";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Connection } from "../../../src/providers/ec2/s3-connection.js";
import { headObject } from "../../../src/providers/ec2/s3-objects.js";
import { errorCode } from "../../../src/util/errors.js";
import { makeTestPki, type TestPki } from "../../helpers/test-ca.js";

let pki: TestPki;
before(async () => {
  pki = await makeTestPki(await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-pki-")));
});

/** An https "S3" whose every HEAD finds a 5-byte object. */
async function httpsS3(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const server = createServer({ cert: pki.serverCert, key: pki.serverKey }, (req, res) => {
    res.writeHead(200, { "content-length": "5", etag: '"0123456789abcdef0123456789abcdef"' });
    res.end();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `https://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const connect = (endpoint: string, tls: ConstructorParameters<typeof S3Connection>[0]["tls"]) =>
  new S3Connection({
    cloud: "tls-test",
    endpoint,
    region: "us-east-1",
    accessKeyId: "AKID",
    secretAccessKey: "secret",
    maxAttempts: 1,
    tls,
  });

test("the cloud's CA file is trusted; another CA is refused with a sentence; verify off checks nothing", async (t) => {
  const url = await httpsS3(t);
  const trusted = connect(url, { caFile: { path: pki.caFile, from: "OS_CACERT" }, verify: true });
  assert.equal((await headObject(trusted, "b", "k"))?.size, 5);

  const wrongCa = connect(url, { caFile: { path: pki.otherCaFile, from: "OS_CACERT" }, verify: true });
  const e = (await headObject(wrongCa, "b", "k").catch((x: unknown) => x)) as Error;
  assert.equal(errorCode(e), "ECLOUD");
  assert.match(
    e.message,
    new RegExp(`^S3 at ${url} could not be reached for HeadObject s3://b/k: .*(certificate|verify)`, "i"),
  );

  const unchecked = connect(url, { verify: false });
  assert.equal((await headObject(unchecked, "b", "k"))?.size, 5);
});

test("a CA file that cannot be read is a configuration error naming it and where it was set", () => {
  assert.throws(
    () =>
      connect("https://127.0.0.1:1", { caFile: { path: "/nonexistent/ca.pem", from: "AWS_CA_BUNDLE" }, verify: true }),
    {
      code: "ECONFIG",
      message: /^cloud "tls-test": the CA file \/nonexistent\/ca\.pem \(AWS_CA_BUNDLE\) cannot be read: /,
    },
  );
});
