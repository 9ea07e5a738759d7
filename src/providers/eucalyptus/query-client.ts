/**
 * One signed call to a Eucalyptus Query service (Empyrean, Configuration, compute): the parameters are sent as
 * an `application/x-www-form-urlencoded` POST body, signed with AWS Signature Version 4 by @smithy/signature-v4,
 * and the XML reply is read with a size limit and parsed by fast-xml-parser with namespaces dropped.
 *
 * Why POST and SigV4: euca2ools 3.4 and Eucalyptus 4.4's own admin tools send every request this way
 * (requestbuilder's `AWSQueryRequest` with `METHOD = 'POST'` and `HmacV4Auth`, in
 * euca2ools/commands/bootstrap/__init__.py and eucalyptus admin-tools/eucalyptus_admin/commands/*). The
 * credential scope carries the service's signing name ("bootstrap" for Empyrean, its @ServiceNames in
 * clc/modules/msgs/.../empyrean/Empyrean.java; "ec2" for compute); Eucalyptus 4.4's Hmacv4LoginModule checks
 * the signature over that scope but not the region, which euca2ools fills with a placeholder. Only the URL's
 * query counts as the canonical query for a V4 POST (HmacHandler.processParametersForVariant); the body is hashed.
 *
 * Hostile replies: a body over `maxResponseBytes` is cut off and refused, a DOCTYPE (and so any entity) is
 * refused before parsing, and entities are never expanded.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { XMLParser } from "fast-xml-parser";
import { AbortedError } from "../../util/errors.js";
import { EucalyptusError, type EucalyptusCallContext } from "./eucalyptus-error.js";

export interface EucalyptusCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** A Query service of the cloud: where it answers and the name its signatures are scoped to. */
export interface QueryService {
  /** Full service URL, e.g. http://clc.example:8773/services/Empyrean */
  readonly url: string;
  /** The SigV4 service name of the credential scope ("bootstrap", "ec2", "configuration"). */
  readonly signingName: string;
  /** The service's name in messages. */
  readonly label: string;
  /** The `Version` parameter the service's tools send ("eucalyptus" for the admin services). */
  readonly apiVersion: string;
}

export interface QueryCallOptions {
  readonly signal?: AbortSignal;
  /** Largest reply accepted, in bytes; 16 MiB by default (a verbose DescribeInstances of a large cloud fits). */
  readonly maxResponseBytes?: number;
  /** Milliseconds before a call is given up; 60 s by default. */
  readonly timeoutMs?: number;
  /** The region of the credential scope; Eucalyptus ignores it, euca2ools sends a placeholder. */
  readonly region?: string;
}

/** The parsed reply: element names without namespace prefixes, text as strings, attributes dropped. */
export type QueryReply = Record<string, unknown>;

const DEFAULT_MAX_RESPONSE = 16 * 1024 * 1024;

/** Elements that are lists in the Eucalyptus and EC2 bindings (`<item>` children): always parsed as arrays. */
const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  processEntities: false,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => name === "item" || name === "Error",
});

/** Parses a Query reply, refusing a DTD: no reply of these services has one, and entities are an attack. */
export function parseQueryXml(text: string): QueryReply {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new Error("it has a DTD, which is refused");
  const parsed: unknown = parser.parse(text);
  if (typeof parsed !== "object" || parsed === null) throw new Error("it is not XML");
  return parsed as QueryReply;
}

/** Reads a response body up to `limit` bytes; past that, cancels it and throws. */
async function readBounded(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    await response.body?.cancel();
    throw new Error(`the reply is over the ${limit}-byte limit (it declares ${declared} bytes)`);
  }
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new Error(`the reply is over the ${limit}-byte limit`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** A Query error reply's code and message: EC2's `<Response><Errors><Error>` or the Eucalyptus `<ErrorResponse>`. */
export function queryErrorOf(reply: QueryReply): { code: string; message: string } | undefined {
  const response = reply["Response"] as { Errors?: { Error?: unknown[] } } | undefined;
  const errorResponse = reply["ErrorResponse"] as { Error?: unknown[] } | undefined;
  const first = (response?.Errors?.Error ?? errorResponse?.Error)?.[0] as
    { Code?: unknown; Message?: unknown } | undefined;
  if (!first) return undefined;
  return { code: String(first.Code ?? "unknown"), message: String(first.Message ?? "") };
}

/** Form-encodes parameters the way the AWS Query protocol wants (RFC 3986, space as %20). */
function formEncode(params: Record<string, string>): string {
  const enc = (s: string): string =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return Object.entries(params)
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join("&");
}

/**
 * Sends `action` with `params` to `service`, signed with `credentials`; returns the parsed reply's root
 * element's content (e.g. the inside of `<DescribeServicesResponseType>`). Throws EucalyptusError for an
 * error reply, an unreadable reply or a failed connection, AbortedError when `signal` aborts.
 */
export async function queryCall(
  service: QueryService,
  credentials: EucalyptusCredentials,
  action: string,
  params: Record<string, string>,
  options: QueryCallOptions = {},
): Promise<QueryReply> {
  const context: EucalyptusCallContext = { service: service.label, action, url: service.url };
  const url = new URL(service.url);
  const body = formEncode({ Action: action, Version: service.apiVersion, ...params });
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
    },
    region: options.region ?? "eucalyptus",
    service: service.signingName,
    sha256: Sha256,
  });
  const request = new HttpRequest({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    headers: { host: url.host, "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body,
  });
  const signed = await signer.sign(request);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 60_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let response: Response;
  let text: string;
  try {
    const headers = { ...signed.headers };
    delete headers["host"];
    response = await fetch(url, { method: "POST", headers, body, signal, redirect: "error" });
    text = await readBounded(response, options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE);
  } catch (error) {
    if (options.signal?.aborted) throw new AbortedError(`Eucalyptus ${service.label} ${action} cancelled`);
    const why = timeout.aborted ? "no reply in time" : (error as Error).message;
    throw new EucalyptusError(context, `the call failed: ${why}`, {}, { cause: error });
  }
  let reply: QueryReply;
  try {
    reply = parseQueryXml(text);
  } catch (error) {
    throw new EucalyptusError(context, `unreadable reply: ${(error as Error).message}`, { status: response.status });
  }
  const refusal = queryErrorOf(reply);
  if (refusal || !response.ok) {
    throw new EucalyptusError(context, refusal?.message || `HTTP ${response.statusText}`, {
      status: response.status,
      ...(refusal ? { cloudCode: refusal.code } : {}),
    });
  }
  const roots = Object.keys(reply).filter((k) => k !== "?xml");
  const root = roots.length === 1 ? reply[roots[0]!] : undefined;
  if (typeof root !== "object" || root === null) {
    throw new EucalyptusError(context, "the reply has no response element", { status: response.status });
  }
  return root as QueryReply;
}
