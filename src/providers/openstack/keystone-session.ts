/**
 * A Keystone v3 session: authenticates (password, application credential or token; project or domain scope),
 * keeps the token and its service catalog, and renews the token before it expires so that a transfer of
 * hours does not die half way. Every other call gets its token and endpoints from here.
 */
import { z } from "zod";
import type { CloudConfig } from "./cloud-config.js";
import { AuthenticationError, OpenStackError } from "./errors.js";
import { CloudNetwork } from "./cloud-network.js";
import { selectEndpoint, type CatalogService } from "./service-catalog.js";
import {
  DEFAULT_RETRY_POLICY,
  isTransientNetworkError,
  isTransientStatus,
  retryDelayMs,
  type RetryPolicy,
} from "./retry-policy.js";

const TokenBody = z.object({
  token: z.object({
    expires_at: z.string(),
    issued_at: z.string().optional(),
    user: z.object({ id: z.string(), name: z.string().optional() }),
    project: z.object({ id: z.string(), name: z.string().optional() }).optional(),
    domain: z.object({ id: z.string(), name: z.string().optional() }).optional(),
    roles: z.array(z.object({ name: z.string() })).optional(),
    catalog: z
      .array(
        z.object({
          type: z.string(),
          name: z.string().optional(),
          endpoints: z.array(
            z.object({
              interface: z.string(),
              region_id: z.string().nullish(),
              region: z.string().nullish(),
              url: z.string(),
            }),
          ),
        }),
      )
      .optional(),
  }),
});

export interface SessionOptions {
  readonly retryPolicy?: RetryPolicy;
  /**
   * Renew when less than this remains of the token's life. Default: a quarter of the lifetime Keystone gave,
   * at most five minutes, so a short test token (90 s) renews 22 s early and a normal one 5 min early.
   */
  readonly renewBeforeMs?: number;
}

export interface ScopeInfo {
  readonly userId: string;
  readonly userName?: string;
  readonly projectId?: string;
  readonly projectName?: string;
  readonly domainId?: string;
}

interface CurrentToken {
  readonly value: string;
  readonly expiresAt: number;
  readonly renewAt: number;
  readonly catalog: readonly CatalogService[];
  readonly scope: ScopeInfo;
}

export class KeystoneSession {
  readonly config: CloudConfig;
  private readonly retryPolicy: RetryPolicy;
  private readonly renewBeforeMs: number | undefined;
  private connections: CloudNetwork | undefined;
  private current: CurrentToken | undefined;
  private pending: Promise<CurrentToken> | undefined;
  /** How many times a token was obtained; tests use it to see a renewal happen. */
  authentications = 0;

  constructor(config: CloudConfig, options: SessionOptions = {}) {
    this.config = config;
    this.retryPolicy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
    this.renewBeforeMs = options.renewBeforeMs;
  }

  get cloud(): string {
    return this.config.name;
  }

  /** How this cloud is reached (TLS, proxy, timeouts), made on first use: every request goes through it. */
  get network(): CloudNetwork {
    this.connections ??= new CloudNetwork(this.config.name, this.config.network);
    return this.connections;
  }

  /** A token valid for a while yet; authenticates or renews as needed (one request even if many ask at once). */
  async token(): Promise<string> {
    return (await this.valid()).value;
  }

  async scope(): Promise<ScopeInfo> {
    return (await this.valid()).scope;
  }

  /** When the current token expires (ms since the epoch), after authenticating if needed. */
  async expiresAt(): Promise<number> {
    return (await this.valid()).expiresAt;
  }

  /** The endpoint for a service type, honouring `<type>_endpoint_override`, the region and the interface. */
  async endpoint(serviceType: string): Promise<string> {
    const override = this.config.endpointOverrides[serviceType];
    const current = await this.valid();
    if (override) return override.replace(/\/+$/, "");
    return selectEndpoint(current.catalog, {
      cloud: this.cloud,
      serviceType,
      interface: this.config.interface,
      region: this.config.regionName,
    });
  }

  /** Forget the token (a service answered 401 with it): the next call authenticates again. */
  invalidate(token: string): void {
    if (this.current?.value === token) this.current = undefined;
  }

  private async valid(): Promise<CurrentToken> {
    if (this.current && Date.now() < this.current.renewAt) return this.current;
    this.pending ??= this.authenticate().finally(() => (this.pending = undefined));
    this.current = await this.pending;
    return this.current;
  }

  private async authenticate(): Promise<CurrentToken> {
    const call = "keystone POST /v3/auth/tokens";
    const url = `${this.config.auth.auth_url.replace(/\/+$/, "").replace(/\/v3$/, "")}/v3/auth/tokens`;
    const body = JSON.stringify({ auth: this.authBody() });
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        // Authentication is safe to repeat: it creates nothing but a token.
        response = await this.network.fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
      } catch (e) {
        if (attempt < this.retryPolicy.maxAttempts && isTransientNetworkError(e)) {
          await sleep(retryDelayMs(this.retryPolicy, attempt));
          continue;
        }
        throw new OpenStackError(
          { cloud: this.cloud, call },
          `cannot reach ${url}: ${this.network.describeFailure(e, url)}`,
          {
            cause: e,
          },
        );
      }
      if (isTransientStatus(response.status) && attempt < this.retryPolicy.maxAttempts) {
        await response.body?.cancel();
        await sleep(retryDelayMs(this.retryPolicy, attempt, response.headers.get("retry-after")));
        continue;
      }
      const text = await response.text();
      if (response.status === 401 || response.status === 403) {
        throw new AuthenticationError(
          { cloud: this.cloud, call, status: response.status },
          `authentication refused (${this.describeIdentity()}): ${keystoneMessage(text)}`,
        );
      }
      if (response.status !== 201 && response.status !== 200) {
        throw new OpenStackError({ cloud: this.cloud, call, status: response.status }, keystoneMessage(text));
      }
      const tokenValue = response.headers.get("x-subject-token");
      if (!tokenValue) {
        throw new OpenStackError(
          { cloud: this.cloud, call, status: response.status },
          "no X-Subject-Token in the reply",
        );
      }
      const parsed = TokenBody.safeParse(JSON.parse(text));
      if (!parsed.success) {
        throw new OpenStackError(
          { cloud: this.cloud, call, status: response.status },
          `unexpected token body: ${parsed.error.message}`,
        );
      }
      const t = parsed.data.token;
      const issuedAt = t.issued_at ? Date.parse(t.issued_at) : Date.now();
      const expiresAt = Date.parse(t.expires_at);
      const lifetime = Math.max(0, expiresAt - issuedAt);
      const renewBefore = this.renewBeforeMs ?? Math.min(lifetime / 4, 5 * 60_000);
      this.authentications++;
      return {
        value: tokenValue,
        expiresAt,
        renewAt: expiresAt - renewBefore,
        catalog: t.catalog ?? [],
        scope: {
          userId: t.user.id,
          userName: t.user.name,
          projectId: t.project?.id,
          projectName: t.project?.name,
          domainId: t.domain?.id,
        },
      };
    }
  }

  private authBody(): Record<string, unknown> {
    const a = this.config.auth;
    switch (this.config.authType) {
      case "password":
        return {
          identity: {
            methods: ["password"],
            password: {
              user: a.user_id
                ? { id: a.user_id, password: a.password }
                : { name: a.username, password: a.password, domain: domainRef(a.user_domain_id, a.user_domain_name) },
            },
          },
          ...this.scopeBody(),
        };
      case "v3applicationcredential":
        // An application credential carries its own project scope; Keystone refuses an explicit one.
        return {
          identity: {
            methods: ["application_credential"],
            application_credential: a.application_credential_id
              ? { id: a.application_credential_id, secret: a.application_credential_secret }
              : {
                  name: a.application_credential_name,
                  secret: a.application_credential_secret,
                  user: a.user_id
                    ? { id: a.user_id }
                    : { name: a.username, domain: domainRef(a.user_domain_id, a.user_domain_name) },
                },
          },
        };
      case "token":
        // A token can be exchanged for a (re)scoped one, but never for one that outlives it: renewal past
        // its expiry is impossible by design, and the 401 then says so.
        return { identity: { methods: ["token"], token: { id: a.token } }, ...this.scopeBody() };
    }
  }

  private scopeBody(): Record<string, unknown> {
    const a = this.config.auth;
    if (a.project_id) return { scope: { project: { id: a.project_id } } };
    if (a.project_name) {
      return {
        scope: { project: { name: a.project_name, domain: domainRef(a.project_domain_id, a.project_domain_name) } },
      };
    }
    if (a.domain_id || a.domain_name) return { scope: { domain: domainRef(a.domain_id, a.domain_name) } };
    return {};
  }

  private describeIdentity(): string {
    const a = this.config.auth;
    switch (this.config.authType) {
      case "password":
        return (
          `user "${a.username ?? a.user_id}"` +
          (a.project_name || a.project_id ? ` in project "${a.project_name ?? a.project_id}"` : "")
        );
      case "v3applicationcredential":
        return `application credential "${a.application_credential_id ?? a.application_credential_name}"`;
      case "token":
        return "a given token";
    }
  }
}

function domainRef(id: string | undefined, name: string | undefined): Record<string, string> {
  if (id) return { id };
  return { name: name ?? "Default" };
}

/** Keystone errors are {"error": {"message": ...}}; anything else is quoted briefly. */
export function keystoneMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof m === "string") return m;
  } catch {
    // not JSON: fall through
  }
  // webob's error pages (Glance, Nova) repeat the title in <title> and <h1>: drop the title.
  const plain = decodeEntities(text.replace(/<title>[^<]*<\/title>/i, "").replace(/<[^>]*>/g, " "));
  return plain.replace(/\s+/g, " ").trim().slice(0, 600) || "(empty reply)";
}

function decodeEntities(s: string): string {
  const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === "#")
      return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return named[e.toLowerCase()] ?? m;
  });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
