/**
 * A private CA made with the openssl command, as an operator would make one: a server certificate for
 * 127.0.0.1, localhost and `PROXY_ONLY_HOST` (a name only the test proxies resolve), a client certificate,
 * and a second, unrelated CA that must not be trusted in its place.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A host name no resolver knows (RFC 6761 .invalid): reachable only through a proxy that maps it. */
export const PROXY_ONLY_HOST = "cloud.proxy-only.invalid";

export interface TestPki {
  readonly caFile: string;
  readonly otherCaFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** The PEM texts, for node:https servers. */
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") throw new Error("the openssl command is missing (Debian package openssl)");
    throw new Error(`openssl ${args[0]} failed: ${err.stderr ?? err.message}`);
  }
}

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl([
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", key, "-out", cert,
  ]); // prettier-ignore
  return { cert, key };
}

async function issue(
  dir: string,
  ca: { cert: string; key: string },
  name: string,
  extensions: string,
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl([
    "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-subj", `/CN=${name}`, "-keyout", key, "-out", csr,
  ]); // prettier-ignore
  await openssl([
    "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
    "-days", "2", "-extfile", ext, "-out", cert,
  ]); // prettier-ignore
  return { cert, key };
}

/** Makes the CA, the certificates and the unrelated CA in `dir`. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await makeCa(dir, "test-ca");
  const other = await makeCa(dir, "other-ca");
  const server = await issue(
    dir,
    ca,
    "server",
    `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${PROXY_ONLY_HOST}\nextendedKeyUsage=serverAuth\n`,
  );
  const client = await issue(dir, ca, "client", "extendedKeyUsage=clientAuth\n");
  return {
    caFile: ca.cert,
    otherCaFile: other.cert,
    serverCertFile: server.cert,
    serverKeyFile: server.key,
    clientCertFile: client.cert,
    clientKeyFile: client.key,
    ca: await readFile(ca.cert, "utf8"),
    serverCert: await readFile(server.cert, "utf8"),
    serverKey: await readFile(server.key, "utf8"),
  };
}
