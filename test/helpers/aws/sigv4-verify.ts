/**
 * The server half of AWS Signature Version 4, for the test servers written from the AWS API reference (EBS
 * direct APIs, EC2's image tasks, STS): a request is accepted only if the signature it carries is the one
 * @smithy/signature-v4 computes again from the same method, path, query, signed headers and payload hash with the
 * secret the fake account holds for its access key — so a client that signs wrongly (wrong region, wrong
 * service, a header changed after signing, an expired session) fails here as it would at AWS.
 *
 * Reference: "Create a signed AWS API request", AWS IAM User Guide
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), and "Signature Version 4
 * signing process" errors (SignatureDoesNotMatch, ExpiredToken, InvalidClientTokenId / UnrecognizedClientException).
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

export interface SigningSecret {
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** Milliseconds since the epoch after which the key is refused with ExpiredToken. */
  readonly expiresAt?: number;
}

export interface SignedRequestParts {
  readonly method: string;
  /** The request target as received: path and query string. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export type SigV4Verdict =
  | { readonly ok: true; readonly accessKeyId: string; readonly region: string }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** How far a request's X-Amz-Date may be from the server's clock (AWS allows 5 minutes). */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * Checks `req`'s Authorization header for `service`. `secretFor` gives the secret of an access key, undefined
 * for an unknown one. `now` is the server's clock (tests move it to expire a session).
 */
export async function verifySigV4(
  req: SignedRequestParts,
  service: string,
  secretFor: (accessKeyId: string) => SigningSecret | undefined,
  now = Date.now(),
): Promise<SigV4Verdict> {
  const refuse = (status: number, code: string, message: string): SigV4Verdict => ({
    ok: false,
    status,
    code,
    message,
  });
  const authorization = header(req.headers, "authorization");
  if (!authorization) return refuse(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
  const m = AUTH.exec(authorization);
  if (!m) return refuse(403, "IncompleteSignature", "Authorization header is not a SigV4 signature");
  const [, accessKeyId, day, region, signedService, signedHeaderList, signature] = m as unknown as string[];
  if (signedService !== service) {
    return refuse(403, "SignatureDoesNotMatch", `Credential should be scoped to correct service: '${service}'.`);
  }
  const secret = secretFor(accessKeyId!);
  if (!secret)
    return refuse(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
  const amzDate = header(req.headers, "x-amz-date");
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) {
    return refuse(403, "IncompleteSignature", "X-Amz-Date is missing or does not match the credential scope");
  }
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (Math.abs(signingDate.getTime() - now) > CLOCK_SKEW_MS) {
    return refuse(403, "SignatureDoesNotMatch", "Signature expired: the request time is too far from the server's");
  }
  if (secret.sessionToken !== undefined && header(req.headers, "x-amz-security-token") !== secret.sessionToken) {
    return refuse(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
  }
  if (secret.expiresAt !== undefined && now >= secret.expiresAt) {
    return refuse(400, "ExpiredToken", "The security token included in the request is expired");
  }
  // A payload hash the client declared must be the body's (S3's XAmzContentSHA256Mismatch); UNSIGNED-PAYLOAD
  // and the streaming forms leave the body out of the signature, as they do at AWS.
  const declared = header(req.headers, "x-amz-content-sha256");
  if (declared && /^[0-9a-f]{64}$/.test(declared) && declared !== createHash("sha256").update(req.body).digest("hex")) {
    return refuse(
      400,
      "XAmzContentSHA256Mismatch",
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }
  const signedNames = signedHeaderList!.split(";");
  if (!signedNames.includes("host")) return refuse(403, "SignatureDoesNotMatch", "The host header must be signed");
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = header(req.headers, name);
    if (value === undefined) return refuse(403, "SignatureDoesNotMatch", `Signed header ${name} is missing`);
    headers[name] = value;
  }
  const target = new URL(req.url, "http://placeholder");
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of target.searchParams) {
    const had = query[k];
    query[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  const signer = new SignatureV4({
    service,
    region: region!,
    sha256: Sha256,
    credentials: { accessKeyId: accessKeyId!, secretAccessKey: secret.secretAccessKey },
    uriEscapePath: service !== "s3",
  });
  const request = new HttpRequest({
    method: req.method,
    protocol: "http:",
    hostname: (headers.host ?? "").replace(/:\d+$/, ""),
    path: target.pathname,
    query,
    headers,
    body: req.body,
  });
  // Signing again with the same date signs exactly the headers listed (none is unsignable here).
  const resigned = await signer.sign(request, {
    signingDate,
    signingRegion: region,
    signingService: service,
    unsignableHeaders: new Set(),
  });
  const expected = /Signature=([0-9a-f]{64})/.exec(resigned.headers.authorization ?? "")?.[1];
  const resignedList = /SignedHeaders=([^,]+)/.exec(resigned.headers.authorization ?? "")?.[1];
  if (expected !== signature || resignedList !== signedHeaderList) {
    return refuse(
      403,
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided.",
    );
  }
  return { ok: true, accessKeyId: accessKeyId!, region: region! };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}
