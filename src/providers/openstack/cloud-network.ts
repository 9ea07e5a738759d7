/**
 * How every connection to one cloud is made, built once from its settings (cloud-config.ts NetworkSettings)
 * and used by every request: Keystone and the services through undici (an Agent whose connector is the one
 * below), streamed uploads through node:http (`createConnection` with the same connector), and the
 * random-access image input through its own connections (the same TLS options).
 *
 * - TLS: the cloud's `cacert` replaces Node's bundled CAs (as requests' `verify=<file>` does for the
 *   openstack CLI); `cert`/`key` are the client certificate; `verify: false` checks nothing, with a warning.
 * - Proxies: HTTPS_PROXY / HTTP_PROXY / NO_PROXY (lower case first, as curl reads them) apply to every request
 *   by default. Every proxied request goes through a CONNECT tunnel (as undici's ProxyAgent does), so TLS stays
 *   end to end and the certificate checked is the cloud's, whatever the proxy.
 * - Timeouts: a connection not made within the connect timeout, and a request on which no byte moves for the
 *   idle timeout (`api_timeout`), fail with an error that the retry policy counts as transient.
 *
 * Errors say which host and, for a certificate, which CA it was checked against. Proxy credentials given
 * in a proxy URL are sent as Proxy-Authorization and never appear in a message.
 */
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import type { Socket } from "node:net";
import { Agent, buildConnector, fetch as undiciFetch } from "undici";
import type { NetworkSettings } from "./cloud-config.js";
import { describeCause, OpenStackConfigError } from "./errors.js";

/** Without `api_timeout`: undici's own body timeout, long enough for a Glance busy hashing a large image. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** A TCP and TLS handshake that takes longer than this will not complete; never longer than the idle timeout. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

type Env = Readonly<Record<string, string | undefined>>;

/** Node's TLS options for a connection to the cloud. */
export interface CloudTlsOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized: boolean;
}

/** Where a connection goes: a URL, or undici's connect options (whose port is a string, maybe empty). */
export interface ConnectTarget {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | string;
}

export class CloudNetwork {
  readonly cloud: string;
  readonly settings: NetworkSettings;
  readonly tls: CloudTlsOptions;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** The dispatcher every fetch to this cloud goes through. */
  readonly dispatcher: Agent;
  private readonly env: Env;
  private readonly direct: buildConnector.connector;

  constructor(cloud: string, settings: NetworkSettings, env: Env = process.env) {
    this.cloud = cloud;
    this.settings = settings;
    this.env = env;
    this.tls = {
      ...(settings.cacert ? { ca: readPem(cloud, settings.cacert.path, `the CA file (${settings.cacert.from})`) } : {}),
      ...(settings.cert ? { cert: readPem(cloud, settings.cert, "the client certificate (cert, OS_CERT)") } : {}),
      ...(settings.key ? { key: readPem(cloud, settings.key, "the client key (key, OS_KEY)") } : {}),
      rejectUnauthorized: settings.verify,
    };
    if (settings.cert && !settings.key && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(this.tls.cert ?? "")) {
      throw new OpenStackConfigError(`cloud "${cloud}": a client certificate needs its key (key, OS_KEY)`);
    }
    this.idleTimeoutMs = settings.apiTimeoutSeconds ? settings.apiTimeoutSeconds * 1000 : DEFAULT_IDLE_TIMEOUT_MS;
    this.connectTimeoutMs = Math.min(DEFAULT_CONNECT_TIMEOUT_MS, this.idleTimeoutMs);
    this.direct = buildConnector({ ...this.tls, timeout: this.connectTimeoutMs });
    this.dispatcher = new Agent({
      connect: (opts, callback) => {
        this.open(opts).then(
          (socket) => callback(null, socket),
          (e: Error) => callback(e, null),
        );
      },
      headersTimeout: this.idleTimeoutMs,
      bodyTimeout: this.idleTimeoutMs,
    });
    if (!settings.verify && !warnedInsecure.has(cloud)) {
      warnedInsecure.add(cloud);
      process.emitWarning(
        `cloud "${cloud}": TLS certificates are not checked (verify: false, OS_INSECURE or --insecure); ` +
          "anyone on the path can read and change what is sent, credentials included",
      );
    }
  }

  /** fetch through this cloud's dispatcher. */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const response = await undiciFetch(url, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: this.dispatcher,
    });
    return response as unknown as Response;
  }

  /** The proxy a request to `url` goes through, or undefined when it goes direct. */
  proxyFor(target: ConnectTarget): URL | undefined {
    const hostname = target.hostname.replace(/^\[(.*)\]$/, "$1");
    return proxyFor(target.protocol, hostname, Number(target.port) || defaultPort(target.protocol), this.env);
  }

  /** A connected socket (TLS for https, through the proxy if one applies) to `target`'s host. */
  async open(target: ConnectTarget): Promise<Socket> {
    const hostname = target.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(target.port) || defaultPort(target.protocol);
    const proxy = this.proxyFor(target);
    const options = { hostname, host: hostname, port: String(port), protocol: target.protocol };
    if (!proxy) return await connectWith(this.direct, options);
    const tunnel = await openTunnel(proxy, hostname, port, this.connectTimeoutMs);
    if (target.protocol !== "https:") return tunnel;
    try {
      return await connectWith(this.direct, { ...options, httpSocket: tunnel });
    } catch (e) {
      tunnel.destroy(); // a failed handshake leaves the tunnel open otherwise
      throw e;
    }
  }

  /**
   * node:http's `createConnection` for a request to this cloud: the socket comes from `open`, so an upload is
   * proxied, verified and timed like every other request.
   */
  createConnection(url: URL): (options: unknown, done: (error: Error | null, socket?: Socket) => void) => undefined {
    return (_options, done) => {
      this.open(url).then(
        (socket) => done(null, socket),
        (e: Error) => done(e),
      );
      return undefined;
    };
  }

  /**
   * What went wrong below HTTP, for a message: the host, and for a certificate, the CA it was checked
   * against; a timeout with the setting that bounds it; the proxy (without its credentials) when one was used.
   */
  describeFailure(error: unknown, url: string | URL): string {
    const target = new URL(url);
    const host = target.host;
    const proxy = this.proxyFor(target);
    const via = proxy ? ` (through the proxy ${redactedProxy(proxy)})` : "";
    const code = errorCode(error);
    if (code && CERTIFICATE_CODES.has(code)) {
      const reason = causeMessage(error, code);
      return `the TLS certificate of ${host} is not trusted: ${reason}; checked against ${this.caDescription()}${via}`;
    }
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
      return (
        `the TLS certificate of ${host} is not for that host name: ${causeMessage(error, code)}; ` +
        `the certificate's CA is checked against ${this.caDescription()}${via}`
      );
    }
    if (code === "UND_ERR_CONNECT_TIMEOUT") {
      return `could not connect to ${host} within ${this.connectTimeoutMs / 1000} s${via}`;
    }
    if (code === "UND_ERR_HEADERS_TIMEOUT") {
      return `${host} sent no reply within ${this.idleTimeoutMs / 1000} s (${this.idleSetting()})${via}`;
    }
    if (code === "UND_ERR_BODY_TIMEOUT") {
      return `${host} sent nothing for ${this.idleTimeoutMs / 1000} s (${this.idleSetting()})${via}`;
    }
    if (code === "EPROXY") return `${causeMessage(error, code)} (connecting to ${host})`;
    return `${host}${via}: ${describeCause(error)}`;
  }

  private caDescription(): string {
    const c = this.settings.cacert;
    if (c) return `the CA file ${c.path} (from ${c.from})`;
    const extra = this.env.NODE_EXTRA_CA_CERTS;
    return `Node's bundled CAs${extra ? ` and NODE_EXTRA_CA_CERTS (${extra})` : ""} (no cacert set for this cloud)`;
  }

  private idleSetting(): string {
    return this.settings.apiTimeoutSeconds ? "api_timeout" : "the default; set api_timeout to change it";
  }
}

/** Clouds already warned about: a migrate within one cloud opens it twice, the user needs telling once. */
const warnedInsecure = new Set<string>();

/** Certificate-chain failures, as OpenSSL names them through Node. */
const CERTIFICATE_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
]);

function readPem(cloud: string, path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new OpenStackConfigError(`cloud "${cloud}": ${what} ${path} cannot be read: ${(e as Error).message}`);
  }
  if (!text.includes("-----BEGIN ")) {
    throw new OpenStackConfigError(`cloud "${cloud}": ${what} ${path} is not PEM (no "-----BEGIN" line)`);
  }
  return text;
}

function defaultPort(protocol: string): number {
  return protocol === "https:" ? 443 : 80;
}

function connectWith(
  connector: buildConnector.connector,
  options: Parameters<buildConnector.connector>[0],
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    connector(options, (error, socket) => (error ? reject(error) : resolve(socket as Socket)));
  });
}

/**
 * The proxy for a request, from the environment as curl and undici read it: `https_proxy` / `HTTPS_PROXY` for
 * https (falling back to the http proxy, as undici does), `http_proxy` / `HTTP_PROXY` for http; `no_proxy` /
 * `NO_PROXY` lists hosts to reach directly: `*`, a name (its subdomains too), `.suffix`, an address, each
 * optionally with `:port`.
 */
export function proxyFor(protocol: string, hostname: string, port: number, env: Env): URL | undefined {
  const httpProxy = env.http_proxy || env.HTTP_PROXY;
  const raw = protocol === "https:" ? env.https_proxy || env.HTTPS_PROXY || httpProxy : httpProxy;
  if (!raw) return undefined;
  if (bypassesProxy(hostname.toLowerCase(), port, env.no_proxy ?? env.NO_PROXY ?? "")) return undefined;
  let proxy: URL;
  try {
    proxy = new URL(raw.includes("://") ? raw : `http://${raw}`);
  } catch {
    throw new OpenStackConfigError(`the proxy ${raw.replace(/\/\/[^/@]*@/, "//***@")} is not a URL`);
  }
  if (proxy.protocol !== "http:") {
    throw new OpenStackConfigError(`the proxy ${redactedProxy(proxy)}: only http:// proxies are supported`);
  }
  return proxy;
}

function bypassesProxy(hostname: string, port: number, noProxy: string): boolean {
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (!m) continue;
    const host = m[1]!.replace(/^\[(.*)\]$/, "$1").replace(/^\*?\./, ".");
    if (m[2] && Number(m[2]) !== port) continue;
    if (host.startsWith(".") ? hostname.endsWith(host) : hostname === host || hostname.endsWith(`.${host}`)) {
      return true;
    }
  }
  return false;
}

function redactedProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

/** A CONNECT tunnel through `proxy` to host:port: a socket on which the target's bytes flow. */
function openTunnel(proxy: URL, hostname: string, port: number, timeoutMs: number): Promise<Socket> {
  const authority = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username || proxy.password) {
    const pair = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers["proxy-authorization"] = `Basic ${Buffer.from(pair).toString("base64")}`;
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: proxy.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(proxy.port) || 80,
      method: "CONNECT",
      path: authority,
      headers,
      agent: false,
    });
    const timer = setTimeout(() => {
      req.destroy(
        Object.assign(new Error(`no tunnel through the proxy within ${timeoutMs / 1000} s`), {
          code: "UND_ERR_CONNECT_TIMEOUT", // what undici says of a direct connection: the same failure, retried alike
        }),
      );
    }, timeoutMs);
    req.once("connect", (res, socket: Socket, head: Buffer) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        socket.destroy();
        const error = new Error(
          `the proxy ${redactedProxy(proxy)} refused the tunnel: HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trim(),
        );
        reject(Object.assign(error, { code: "EPROXY" }));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}

/** The first `code` down the cause chain (fetch wraps the socket's error, sometimes twice). */
function errorCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function causeMessage(error: unknown, code: string): string {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    if ((e as { code?: unknown }).code === code) return e.message;
    e = e.cause;
  }
  return code;
}
