/**
 * Errors of the OpenStack client. Every message names the cloud, the call and the HTTP status, so a log line
 * alone says where it failed; none ever carries a password, secret or token (the request headers and body are
 * never part of a message, and a server's reply is passed through `redactSecrets` before it is quoted).
 */

export interface OpenStackErrorContext {
  /** The cloud's name from clouds.yaml, or "envvars" when configured by OS_* variables. */
  readonly cloud: string;
  /** What was being done, e.g. "glance GET /v2/images/{id}" or "keystone authenticate". */
  readonly call: string;
  /** The HTTP status, when a reply came at all. */
  readonly status?: number;
}

export class OpenStackError extends Error {
  readonly cloud: string;
  readonly call: string;
  readonly status: number | undefined;

  constructor(context: OpenStackErrorContext, detail: string, options?: { cause?: unknown }) {
    const status = context.status === undefined ? "" : ` → HTTP ${context.status}`;
    super(`cloud "${context.cloud}": ${context.call}${status}: ${redactSecrets(detail)}`, options);
    this.name = new.target.name;
    this.cloud = context.cloud;
    this.call = context.call;
    this.status = context.status;
  }
}

/** The configuration is unusable: unknown cloud, missing auth URL, no credentials. No request was made. */
export class OpenStackConfigError extends Error {
  constructor(message: string) {
    super(redactSecrets(message));
    this.name = "OpenStackConfigError";
  }
}

/** The service catalog has no endpoint for the asked service type, region and interface. */
export class EndpointNotFoundError extends OpenStackError {}

/** Keystone refused the credentials (401) or the scope (403). */
export class AuthenticationError extends OpenStackError {}

/** Downloaded bytes do not match the hash Glance recorded for the image. */
export class ImageVerificationError extends OpenStackError {}

/** A wait (image active, server snapshot) ran past its limit or ended in an error state. */
export class WaitError extends OpenStackError {}

// Fernet tokens are long base64url strings starting with gAAAA. A "password": "..." pair could only appear
// if a server echoed a request, but costs nothing to hide. (Hashes stay: they are evidence, not secrets.)
const FERNET_TOKEN = /gAAAA[A-Za-z0-9_\-=]{20,}/g;
const SECRET_FIELD = /("(?:password|secret|token|application_credential_secret)"\s*:\s*)"[^"]*"/gi;

export function redactSecrets(text: string): string {
  return text.replace(FERNET_TOKEN, "***").replace(SECRET_FIELD, (_m, key: string) => `${key}"***"`);
}
