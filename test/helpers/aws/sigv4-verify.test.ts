/**
 * The test servers' SigV4 check must refuse what AWS refuses, or the tests built on it prove nothing: a request
 * signed by the SDK passes; the same request with a changed body, another secret, another service's scope, an
 * expired session or a stale date is refused with AWS's code.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { verifySigV4, type SigningSecret } from "./sigv4-verify.js";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

async function signed(body: string, options: { service?: string; token?: string; date?: Date } = {}) {
  const signer = new SignatureV4({
    service: options.service ?? "ec2",
    region: "eu-west-1",
    sha256: Sha256,
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: SECRET, sessionToken: options.token },
  });
  const request = new HttpRequest({
    method: "POST",
    protocol: "http:",
    hostname: "127.0.0.1",
    port: 8999,
    path: "/",
    query: { a: "1 2", b: ["x", "y"] },
    headers: { host: "127.0.0.1:8999", "content-type": "application/x-www-form-urlencoded" },
    body,
  });
  const out = await signer.sign(request, { signingDate: options.date ?? new Date() });
  return {
    method: "POST",
    url: "/?a=1%202&b=x&b=y",
    headers: Object.fromEntries(Object.entries(out.headers).map(([k, v]) => [k.toLowerCase(), v])),
    body: Buffer.from(body),
  };
}

const known = (secret: SigningSecret) => (id: string) => (id === "AKIDEXAMPLE" ? secret : undefined);

test("a request the SDK's signer signed passes; a changed one does not", async () => {
  const req = await signed("Action=DescribeImages&Version=2016-11-15");
  const ok = await verifySigV4(req, "ec2", known({ secretAccessKey: SECRET }));
  assert.deepEqual(ok, { ok: true, accessKeyId: "AKIDEXAMPLE", region: "eu-west-1" });
  const tampered = { ...req, body: Buffer.from("Action=DeregisterImage&Version=2016-11-15") };
  const unhashed = { ...tampered, headers: { ...req.headers, "x-amz-content-sha256": undefined } };
  assert.equal(
    ((await verifySigV4(unhashed, "ec2", known({ secretAccessKey: SECRET }))) as { code: string }).code,
    "SignatureDoesNotMatch",
  );
  assert.equal(
    ((await verifySigV4(tampered, "ec2", known({ secretAccessKey: SECRET }))) as { code: string }).code,
    "XAmzContentSHA256Mismatch",
  );
  const wrongSecret = await verifySigV4(req, "ec2", known({ secretAccessKey: "other" }));
  assert.equal((wrongSecret as { code: string }).code, "SignatureDoesNotMatch");
  const unknown = await verifySigV4(req, "ec2", () => undefined);
  assert.equal((unknown as { code: string }).code, "UnrecognizedClientException");
});

test("the scope's service, the session token, its expiry and the clock are checked", async () => {
  const ebs = await signed("{}", { service: "ebs" });
  assert.equal(
    ((await verifySigV4(ebs, "ec2", known({ secretAccessKey: SECRET }))) as { code: string }).code,
    "SignatureDoesNotMatch",
  );
  const session = await signed("{}", { token: "tok" });
  assert.equal((await verifySigV4(session, "ec2", known({ secretAccessKey: SECRET, sessionToken: "tok" }))).ok, true);
  const expired = await verifySigV4(
    session,
    "ec2",
    known({ secretAccessKey: SECRET, sessionToken: "tok", expiresAt: Date.now() - 1 }),
  );
  assert.equal((expired as { code: string }).code, "ExpiredToken");
  const stale = await signed("{}", { date: new Date(Date.now() - 10 * 60 * 1000) });
  assert.equal(
    ((await verifySigV4(stale, "ec2", known({ secretAccessKey: SECRET }))) as { code: string }).code,
    "SignatureDoesNotMatch",
  );
});
