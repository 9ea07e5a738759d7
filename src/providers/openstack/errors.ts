/**
 * Errors of the OpenStack client. Every message names the cloud, the call and the HTTP status, so a log line
 * alone says where it failed; none ever carries a password, secret or token (the request headers and body are
 * never part of a message, and a server's reply is passed through `redactSecrets` before it is quoted). They
 * are ChromogenicErrors: each class has its stable `code` (ECLOUD for the base, a more telling one for the
 * failures a caller handles differently), the same a failure of the same kind has in any other store.
 */
import { ChromogenicError } from "../../util/errors.js";

export interface OpenStackErrorContext {
  /** The cloud's name from clouds.yaml, or "envvars" when configured by OS_* variables. */
  readonly cloud: string;
  /** What was being done, e.g. "glance GET /v2/images/{id}" or "keystone authenticate". */
  readonly call: string;
  /** The HTTP status, when a reply came at all. */
  readonly status?: number;
}

/** A call to the cloud failed (ECLOUD): refused, broken, or past its retries. */
export class OpenStackError extends ChromogenicError {
  readonly cloud: string;
  readonly call: string;
  readonly status: number | undefined;

  constructor(context: OpenStackErrorContext, detail: string, options?: { cause?: unknown }) {
    const status = context.status === undefined ? "" : ` → HTTP ${context.status}`;
    super(`cloud "${context.cloud}": ${context.call}${status}: ${redactSecrets(detail)}`, "ECLOUD", options);
    this.cloud = context.cloud;
    this.call = context.call;
    this.status = context.status;
  }
}

/** The configuration is unusable: unknown cloud, missing auth URL, no credentials. No request was made. */
export class OpenStackConfigError extends ChromogenicError {
  constructor(message: string) {
    super(redactSecrets(message), "ECONFIG");
  }
}

/** The service catalog has no endpoint for the asked service type, region and interface. */
export class EndpointNotFoundError extends OpenStackError {
  override readonly code = "ENOENDPOINT";
}

/** Keystone refused the credentials (401) or the scope (403). */
export class AuthenticationError extends OpenStackError {
  override readonly code = "EAUTH";
}

/** Downloaded bytes do not match the hash Glance recorded for the image. */
export class ImageVerificationError extends OpenStackError {
  override readonly code = "EVERIFY";
}

/** A wait (image active, server snapshot) ran past its limit or ended in an error state. */
export class WaitError extends OpenStackError {
  override readonly code = "EWAIT";
}

// Fernet tokens are long base64url strings starting with gAAAA. A "password": "..." pair could only appear
// if a server echoed a request, but costs nothing to hide. (Hashes stay: they are evidence, not secrets.)
const FERNET_TOKEN = /gAAAA[A-Za-z0-9_\-=]{20,}/g;
const SECRET_FIELD = /("(?:password|secret|token|application_credential_secret)"\s*:\s*)"[^"]*"/gi;

export function redactSecrets(text: string): string {
  return text.replace(FERNET_TOKEN, "***").replace(SECRET_FIELD, (_m, key: string) => `${key}"***"`);
}

/** The messages of an error and its causes, each with its code: "fetch failed: connect ECONNREFUSED … (ECONNREFUSED)". */
export function describeCause(e: unknown): string {
  const parts: string[] = [];
  let c: unknown = e;
  for (let i = 0; i < 4 && c instanceof Error; i++) {
    const code = (c as { code?: unknown }).code;
    parts.push(typeof code === "string" ? `${c.message} (${code})` : c.message);
    c = (c as { cause?: unknown }).cause;
  }
  return parts.join(": ") || String(e);
}
