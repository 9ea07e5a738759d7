/**
 * The one place every service call goes through (like the AWS SDK's middleware stack): endpoint from the
 * catalog, the token header, retries with backoff for idempotent calls on transient failures, one
 * re-authentication when a service answers 401 (the token was revoked or expired under us), and errors
 * that name the cloud, the call and the status.
 */
import type { KeystoneSession } from "./keystone-session.js";
import { keystoneMessage, sleep } from "./keystone-session.js";
import { OpenStackError } from "./errors.js";
import {
  isIdempotent,
  isTransientNetworkError,
  isTransientStatus,
  retryDelayMs,
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
} from "./retry-policy.js";

export interface ServiceRequest {
  readonly method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path below the endpoint, with `{placeholders}` already filled; the template goes in `callName`. */
  readonly path: string;
  /** How the call is named in errors, e.g. "GET /v2/images/{id}" (no ids, no query values). */
  readonly callName?: string;
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** A JSON body (serialised here) or a raw body (a stream is sent once: never retried). */
  readonly json?: unknown;
  readonly body?: RequestInit["body"];
  /** Statuses that are a success for this call; anything else becomes an OpenStackError. */
  readonly expect: readonly number[];
  readonly signal?: AbortSignal;
  /** Override the method's idempotency (e.g. a PUT whose body is a one-shot stream is not repeatable). */
  readonly retryable?: boolean;
}

export class ServiceClient {
  readonly session: KeystoneSession;
  /** The catalog service type, e.g. "image" or "compute"; also names the service in errors. */
  readonly serviceType: string;
  private readonly serviceLabel: string;
  private readonly retryPolicy: RetryPolicy;
  private readonly defaultHeaders: Readonly<Record<string, string>>;

  constructor(
    session: KeystoneSession,
    serviceType: string,
    options: { label?: string; retryPolicy?: RetryPolicy; headers?: Record<string, string> } = {},
  ) {
    this.session = session;
    this.serviceType = serviceType;
    this.serviceLabel = options.label ?? serviceType;
    this.retryPolicy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
    this.defaultHeaders = options.headers ?? {};
  }

  /** The service endpoint without a version suffix, e.g. "http://127.0.0.1:9292". */
  async baseUrl(): Promise<string> {
    return (await this.session.endpoint(this.serviceType)).replace(/\/v\d+(\.\d+)?$/, "");
  }

  callLabel(req: Pick<ServiceRequest, "method" | "path" | "callName">): string {
    return `${this.serviceLabel} ${req.callName ?? `${req.method} ${req.path}`}`;
  }

  /** Sends the request; resolves with the response (body unread) when its status is in `expect`. */
  async send(req: ServiceRequest): Promise<Response> {
    const call = this.callLabel(req);
    const cloud = this.session.cloud;
    const retryable = req.retryable ?? (isIdempotent(req.method) && !(req.body instanceof ReadableStream));
    const maxAttempts = retryable ? this.retryPolicy.maxAttempts : 1;
    let reauthenticated = false;
    for (let attempt = 1; ; attempt++) {
      const token = await this.session.token();
      const url = await this.url(req);
      const headers: Record<string, string> = { ...this.defaultHeaders, ...req.headers, "x-auth-token": token };
      if (req.json !== undefined) headers["content-type"] ??= "application/json";
      let response: Response;
      try {
        response = await this.session.network.fetch(url, {
          method: req.method,
          headers,
          body: req.json !== undefined ? JSON.stringify(req.json) : req.body,
          signal: req.signal,
          ...(req.body instanceof ReadableStream ? { duplex: "half" } : {}),
        } as RequestInit);
      } catch (e) {
        if (req.signal?.aborted) throw e;
        if (attempt < maxAttempts && isTransientNetworkError(e)) {
          await sleep(retryDelayMs(this.retryPolicy, attempt), req.signal);
          continue;
        }
        throw new OpenStackError({ cloud, call }, `no reply: ${this.session.network.describeFailure(e, url)}`, {
          cause: e,
        });
      }
      if (req.expect.includes(response.status)) return response;
      // A 401 with a token we believed valid: it was revoked or expired early. Authenticate once more and
      // repeat, unless the body was a stream that is gone.
      if (response.status === 401 && !reauthenticated && !(req.body instanceof ReadableStream)) {
        await response.body?.cancel();
        this.session.invalidate(token);
        reauthenticated = true;
        attempt--;
        continue;
      }
      if (attempt < maxAttempts && isTransientStatus(response.status)) {
        await response.body?.cancel();
        await sleep(retryDelayMs(this.retryPolicy, attempt, response.headers.get("retry-after")), req.signal);
        continue;
      }
      const text = await response.text().catch(() => "");
      throw new OpenStackError({ cloud, call, status: response.status }, serviceMessage(text));
    }
  }

  /** Sends the request and parses the JSON reply (empty replies give undefined). */
  async json(req: ServiceRequest): Promise<unknown> {
    const response = await this.send(req);
    const text = await response.text();
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new OpenStackError(
        { cloud: this.session.cloud, call: this.callLabel(req), status: response.status },
        "the reply is not JSON",
      );
    }
  }

  private async url(req: ServiceRequest): Promise<string> {
    const base = await this.baseUrl();
    const url = new URL(base + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }
}

/** OpenStack services answer errors as JSON of several shapes, or as a small HTML page (Glance, webob). */
export function serviceMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    for (const v of Object.values(parsed)) {
      if (v && typeof v === "object" && typeof (v as { message?: unknown }).message === "string") {
        return (v as { message: string }).message;
      }
    }
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON
  }
  return keystoneMessage(text);
}
