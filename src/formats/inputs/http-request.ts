/**
 * The GET requests an HTTP input sends, and what they share: the caller's headers (fetched afresh for every
 * request, so a renewed token is used as soon as it exists), redirects, retries, cancellation, the count of
 * requests and bytes, and a few kept-alive connections per origin (http-connection.ts: a body is read straight
 * into the block waiting for it). A connection silent for a minute is given up (then retried) rather than
 * waited on for ever; one the server closed while it was idle is replaced at once, without counting a retry.
 *
 * Redirects are followed by hand, because the caller's headers carry credentials (a Glance X-Auth-Token, an
 * Authorization) meant for the URL's own origin: once a redirect leaves that origin, none of them is sent
 * again for the rest of the request. A redirect from https to plain http is refused, since the bytes would
 * then arrive unprotected. Messages name the URL without its query string or user information — a presigned
 * URL carries its signature in the query — and never quote a header.
 */
import type { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { AbortedError, ChromogenicError, RemoteInputError, UsageError } from "../errors.js";
import { BodyTooLongError, HttpConnection, type HttpTlsOptions } from "./http-connection.js";
import { MalformedHeadError, checkRequestField } from "./http-head.js";
import { DEFAULT_HTTP_RETRY, isPermanentNetworkError, isRetryableStatus, retryDelayMs } from "./http-retry.js";
import type { HttpRetryPolicy } from "./http-retry.js";
import { urlForMessages } from "./url-for-messages.js";

export type HttpHeaders = Readonly<Record<string, string>>;

export interface HttpRequestOptions {
  /**
   * The caller's headers, typically credentials. A function is called before every request (retries and
   * redirect hops included), so a token renewed during a long read is picked up. Sent only to the URL's origin.
   */
  headers?: HttpHeaders | (() => HttpHeaders | Promise<HttpHeaders>);
  /**
   * Called when the server answers 401 to the headers it is given (a token revoked or expired early); the
   * request is then sent once more with headers fetched afresh. Without it, a 401 is an error at once.
   */
  onUnauthorized?: (sent: HttpHeaders) => void | Promise<void>;
  /** Cancels every request in flight and every read waiting for one. */
  signal?: AbortSignal;
  /** Redirects followed per request (default 5). */
  maxRedirects?: number;
  retry?: Partial<HttpRetryPolicy>;
  /** TLS settings for https (a private CA, a client certificate, or no check); default: Node's CAs. */
  tls?: HttpTlsOptions;
  /** A connection that moves no byte for this long is given up (default one minute). */
  idleTimeoutMs?: number;
}

/** What an input has cost so far, to judge a format's access pattern over HTTP. */
export interface HttpInputStats {
  /** Requests sent: every attempt and every redirect hop. */
  requests: number;
  /** Body bytes received, those of failed attempts included. */
  bytesFetched: number;
  /** Attempts repeated after a transient failure. */
  retries: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A connection that moves no byte for this long is given up (and the request retried). */
const IDLE_TIMEOUT_MS = 60_000;

/** Error pages and redirects up to this size are read to their end, so their connection can serve again. */
const DRAINED_BYTES = 64 * 1024;

/** Idle connections kept per origin: as many as an input runs requests at once, by default. */
const IDLE_PER_ORIGIN = 8;

/** A reply's body, to be read exactly once in one of three ways. */
export interface HttpBody {
  /** Fills the buffer with the body, which must be exactly that long. */
  readInto(into: Buffer): Promise<void>;
  /** Drops a short body (the connection then serves again) or closes the connection. */
  discard(): void;
  /** The body as a stream of Buffers. */
  stream(): Readable;
}

/** A reply's status and headers, its body not yet read. */
export interface HttpReply {
  readonly status: number;
  readonly statusText: string;
  /** A header's value, or null when the reply has none (repeated headers joined with ", "). */
  header(name: string): string | null;
  readonly body: HttpBody;
}

/** A failure below HTTP (connection refused, reset, dropped mid-body): transient unless it says otherwise. */
class NetworkFailure extends Error {
  constructor(cause: unknown) {
    super("network failure", { cause });
  }
}

/** A status that may pass (429, 503…): the attempt is repeated after the wait the server asks for. */
class TransientStatus extends Error {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly retryAfter: string | null,
  ) {
    super(`HTTP ${status}`);
  }
}

/** The messages of an error and its causes ("read ECONNRESET", "socket hang up (ECONNRESET)"). */
function describeFailure(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    parts.push(typeof code === "string" && !e.message.includes(code) ? `${e.message} (${code})` : e.message);
  }
  return parts.join(": ") || String(error);
}

export class HttpRequester {
  /** The URL without its query string: what messages name. */
  readonly name: string;
  readonly stats: HttpInputStats = { requests: 0, bytesFetched: 0, retries: 0 };
  /** Aborted by the caller's signal or by close(). */
  readonly signal: AbortSignal;
  private readonly url: URL;
  private readonly userinfoAuthorization: string | undefined;
  private readonly closer = new AbortController();
  private readonly policy: HttpRetryPolicy;
  private readonly maxRedirects: number;
  /** Kept-alive connections by origin; each closes itself when `signal` aborts. */
  private readonly idle = new Map<string, HttpConnection[]>();

  constructor(
    url: string | URL,
    private readonly options: HttpRequestOptions = {},
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`not a URL: ${String(url).split("?")[0]}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new UsageError(`${urlForMessages(parsed)}: only http and https URLs can be read`);
    }
    // User information in the URL is a credential like the caller's headers: sent to this origin only.
    if (parsed.username || parsed.password) {
      const pair = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
      this.userinfoAuthorization = `Basic ${Buffer.from(pair).toString("base64")}`;
      parsed.username = "";
      parsed.password = "";
    }
    parsed.hash = "";
    this.url = parsed;
    this.name = urlForMessages(parsed);
    this.policy = { ...DEFAULT_HTTP_RETRY, ...options.retry };
    this.maxRedirects = options.maxRedirects ?? 5;
    this.signal = options.signal ? AbortSignal.any([options.signal, this.closer.signal]) : this.closer.signal;
  }

  /** Cancels what is in flight; every later request fails. */
  close(): void {
    this.closer.abort(new AbortedError(`${this.name}: the input was closed`));
  }

  throwIfAborted(): void {
    if (!this.signal.aborted) return;
    if (this.closer.signal.aborted) throw this.closer.signal.reason as AbortedError;
    throw new AbortedError();
  }

  /**
   * Runs `attempt` (one request and the reading of its reply) until it succeeds, repeating it after network
   * failures and transient statuses up to the policy's attempts; `what` ("bytes 0-8388607") goes into the
   * message of the final error.
   */
  async retrying<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      this.throwIfAborted();
      try {
        return await attempt();
      } catch (e) {
        this.throwIfAborted();
        const transient =
          e instanceof TransientStatus || (e instanceof NetworkFailure && !isPermanentNetworkError(e.cause));
        if (!transient || n >= this.policy.attempts) throw this.finalError(what, e, n);
        this.stats.retries++;
        const retryAfter = e instanceof TransientStatus ? e.retryAfter : null;
        await delay(retryDelayMs(this.policy, n, retryAfter), undefined, { signal: this.signal }).catch(() => {
          this.throwIfAborted();
        });
      }
    }
  }

  /**
   * One GET with `extra` headers (Range, conditions), following redirects; resolves with the first reply that
   * is not a redirect, its body unread.
   */
  async get(extra: HttpHeaders): Promise<HttpReply> {
    let url = this.url;
    let sameOrigin = true;
    let reauthenticated = false;
    for (let hop = 0; ;) {
      const callers = sameOrigin ? await this.callerHeaders() : {};
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(callers)) headers[k.toLowerCase()] = v;
      // Byte offsets must count the stored bytes, not a compressed transfer of them.
      headers["accept-encoding"] = "identity";
      Object.assign(headers, extra);
      const reply = await this.send(url, headers);
      if (reply.status === 401 && sameOrigin && this.options.onUnauthorized && !reauthenticated) {
        this.discard(reply);
        await this.options.onUnauthorized(callers);
        reauthenticated = true;
        continue;
      }
      if (!REDIRECTS.has(reply.status)) return reply;
      this.discard(reply);
      const location = reply.header("location");
      if (!location) throw this.protocolError(`a redirect (HTTP ${reply.status}) without a Location`);
      if (++hop > this.maxRedirects) throw this.protocolError(`more than ${this.maxRedirects} redirects`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw this.protocolError(`a redirect to something that is not a URL`);
      }
      next.hash = "";
      if (next.protocol !== "https:" && (next.protocol !== "http:" || url.protocol === "https:")) {
        throw this.protocolError(`a redirect from ${url.protocol} to ${next.protocol} (${urlForMessages(next)})`);
      }
      if (next.origin !== this.url.origin) sameOrigin = false;
      url = next;
    }
  }

  /**
   * Fills `into` with the reply's body, which must be exactly that long. A connection that drops part way is a
   * network failure (retried); a body longer than asked for is the server's error.
   */
  async readBody(reply: HttpReply, into: Buffer, what: string): Promise<void> {
    try {
      await reply.body.readInto(into);
    } catch (e) {
      this.throwIfAborted();
      if (e instanceof BodyTooLongError || e instanceof MalformedHeadError) {
        throw this.protocolError(`${what}: ${e.message}`);
      }
      throw new NetworkFailure(e);
    }
  }

  /** A reply that is neither what was asked for nor transient becomes an error naming its status. */
  async refuse(reply: HttpReply, what: string): Promise<never> {
    this.discard(reply);
    if (isRetryableStatus(reply.status)) {
      throw new TransientStatus(reply.status, reply.statusText, reply.header("retry-after"));
    }
    const status = statusLine(reply.status, reply.statusText);
    throw new RemoteInputError(`${this.name}: ${what}: ${status}`, reply.status);
  }

  /** A failure while a reply's body streams (for readers that consume it themselves). */
  networkError(what: string, error: unknown): ChromogenicError {
    this.throwIfAborted();
    return new RemoteInputError(`${this.name}: ${what}: ${describeFailure(error)}`, undefined, { cause: error });
  }

  protocolError(message: string, status?: number): RemoteInputError {
    return new RemoteInputError(`${this.name}: ${message}`, status);
  }

  /** Lets go of a reply whose body is not wanted: a short one is read out so that its connection serves again. */
  discard(reply: HttpReply): void {
    reply.body.discard();
  }

  private async send(url: URL, headers: Record<string, string>): Promise<HttpReply> {
    const fields: [string, string][] = [["host", url.host], ...Object.entries(headers)];
    for (const [name, value] of fields) {
      try {
        checkRequestField(name, value);
      } catch (e) {
        throw new UsageError(`${this.name}: ${(e as Error).message}`);
      }
    }
    // A kept-alive connection the server closed while it sat idle fails before any byte of the reply: the
    // request then goes once more on a new connection.
    for (let fresh = false; ; fresh = true) {
      this.throwIfAborted();
      this.stats.requests++;
      let connection: HttpConnection | undefined;
      try {
        connection = fresh ? await this.connect(url) : await this.connectionTo(url);
        const head = await connection.request("GET", `${url.pathname}${url.search}`, fields);
        const body = connection;
        return {
          status: head.status,
          statusText: head.statusText,
          header: (name) => head.headers.get(name.toLowerCase()) ?? null,
          body: {
            readInto: (into) => body.readBodyInto(into),
            discard: () => body.discardBody(DRAINED_BYTES),
            stream: () => body.bodyStream(),
          },
        };
      } catch (e) {
        this.throwIfAborted();
        if (e instanceof MalformedHeadError) throw this.protocolError(`a malformed reply: ${e.message}`);
        if (!fresh && connection?.failedStale) continue;
        throw new NetworkFailure(e);
      }
    }
  }

  private async connectionTo(url: URL): Promise<HttpConnection> {
    const idle = this.idle.get(url.origin);
    for (let c = idle?.pop(); c; c = idle?.pop()) if (c.available) return c;
    return this.connect(url);
  }

  private connect(url: URL): Promise<HttpConnection> {
    return HttpConnection.open(url, {
      idleTimeoutMs: this.options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      tls: this.options.tls,
      signal: this.signal,
      onReusable: (c) => this.keep(url.origin, c),
      onBodyBytes: (n) => (this.stats.bytesFetched += n),
    });
  }

  private keep(origin: string, connection: HttpConnection): void {
    const idle = this.idle.get(origin) ?? [];
    if (this.signal.aborted || idle.length >= IDLE_PER_ORIGIN) {
      connection.close();
      return;
    }
    idle.push(connection);
    this.idle.set(origin, idle);
  }

  private async callerHeaders(): Promise<HttpHeaders> {
    const given = typeof this.options.headers === "function" ? await this.options.headers() : this.options.headers;
    if (!this.userinfoAuthorization) return given ?? {};
    return { authorization: this.userinfoAuthorization, ...given };
  }

  private finalError(what: string, error: unknown, attempts: number): unknown {
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : "";
    if (error instanceof TransientStatus) {
      const status = statusLine(error.status, error.statusText);
      return new RemoteInputError(`${this.name}: ${what}: ${status}${tries}`, error.status);
    }
    if (error instanceof NetworkFailure) {
      return new RemoteInputError(`${this.name}: ${what}: ${describeFailure(error.cause)}${tries}`, undefined, {
        cause: error.cause,
      });
    }
    return error;
  }
}

function statusLine(status: number, text: string): string {
  return `HTTP ${status}${text ? ` ${text}` : ""}`;
}
