/**
 * The service's HTTP API on fastify: the job routes (job-routes.ts), /openapi.json, /healthz, /metrics and the
 * web page's files from web/. `chromogenic serve` makes one with createApiServer and a job store, and the workers
 * (in the same process or on other hosts) run what it queues; this server only stores submissions and reads
 * the store.
 *
 * A request passes, in order: identification (its bearer token, if any, hashed and looked up), the rate limit
 * (per token, per address without one), then on the routes that need it the token check (401), and only then is
 * its body read (at most `bodyLimit` bytes, JSON only). Every refusal is `{"error": {"code", "message"}}`.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import rateLimit from "@fastify/rate-limit";
import fastifyStatic from "@fastify/static";
import { packageFile } from "../../util/package-files.js";
import type { JobStore } from "../job-store.js";
import type { ApiConfig } from "../service-config.js";
import { resolveAllowedFolders, type AllowedFoldersConfig } from "../service-paths.js";
import { ApiError, describeError, errorBody } from "./api-error.js";
import { ApiMetrics } from "./api-metrics.js";
import { ApiTokens, type Principal } from "./api-tokens.js";
import { AuditLog, type AuditEntry } from "./audit-log.js";
import { registerJobRoutes } from "./job-routes.js";
import { openApiDocument } from "./openapi-document.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | undefined;
    audit: Partial<AuditEntry> | undefined;
  }
}

export interface ApiServerOptions {
  readonly store: JobStore;
  /** The service configuration's `api` section (service-config.ts). */
  readonly config: ApiConfig;
  /** The service configuration's `folders`: where jobs may read and write. */
  readonly folders: AllowedFoldersConfig;
  /** The tokens; read from `config.tokens` when not given. */
  readonly tokens?: ApiTokens;
  /** fastify's logger (pino): false (the default) logs nothing but the audit lines. */
  readonly logger?: boolean;
}

export interface ApiServer {
  readonly app: FastifyInstance;
  /** Every method and URL the server answers (the OpenAPI test holds them against the document). */
  readonly routes: readonly { method: string; url: string }[];
  /** Listens on the configured host and port (or these); the base URL, e.g. https://127.0.0.1:8470. */
  listen(where?: { host?: string; port?: number }): Promise<string>;
  close(): Promise<void>;
}

export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { store, config } = options;
  const tokens = options.tokens ?? (await ApiTokens.load(config.tokens));
  const folders = await resolveAllowedFolders(options.folders);
  const tls = config.tls && { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  const app = fastify({
    logger: options.logger ?? false,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    // A client gets this long to send its request (headers and body): a slow trickle does not hold a socket.
    requestTimeout: 30_000,
    ...(tls ? { https: tls } : {}),
    onProtoPoisoning: "error",
    onConstructorPoisoning: "error",
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  const routes: { method: string; url: string }[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });

  const audit = AuditLog.open(config.auditLog);
  const metrics = new ApiMetrics(store);
  const closing = new AbortController();
  const version = packageVersion();

  app.decorateRequest("principal", undefined);
  app.decorateRequest("audit", undefined);
  // Only JSON bodies: fastify would take text/plain as well.
  app.removeContentTypeParser("text/plain");

  app.addHook("onRequest", async (request) => {
    request.principal = identify(tokens, request.headers.authorization);
  });
  await app.register(rateLimit, {
    max: config.rateLimit.max,
    timeWindow: config.rateLimit.windowSeconds * 1000,
    keyGenerator: (request) => (request.principal ? `token:${request.principal.name}` : `address:${request.ip}`),
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        429,
        "rate-limited",
        `too many requests: at most ${context.max} a window; retry in ${context.after}`,
      ),
  });
  const authenticated = {
    preParsing: async (request: FastifyRequest, _reply: FastifyReply) => {
      if (!request.principal)
        throw new ApiError(401, "unauthorized", "send a known token as Authorization: Bearer TOKEN");
    },
  };

  app.setErrorHandler(async (error, request, reply) => {
    const { statusCode, code, message } = describeError(error);
    if (statusCode >= 500) request.log.error({ err: error }, "request failed");
    if (request.audit) request.audit = { ...request.audit, outcome: code };
    return reply.code(statusCode).send(errorBody(code, message));
  });
  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(errorBody("not-found", `nothing at ${request.method} ${request.url.split("?")[0]}`)),
  );
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.requestDuration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (request.audit?.action) {
      audit.write({
        who: request.principal?.name ?? null,
        address: request.ip,
        status: reply.statusCode,
        outcome: request.audit.outcome ?? String(reply.statusCode),
        ...request.audit,
      } as AuditEntry);
    }
  });
  // Refusals before a handler runs (no token, rate limit, bad body) of requests that would change something
  // are audited too: mark them as soon as the route is known.
  app.addHook("onRequest", async (request) => {
    if (request.method === "POST" && request.routeOptions.url === "/v1/jobs") request.audit = { action: "submit" };
    if (request.method === "DELETE" && request.routeOptions.url === "/v1/jobs/:id")
      request.audit = { action: "cancel" };
  });

  registerJobRoutes(app, {
    store,
    folders,
    eventPollMs: config.eventPollMs,
    heartbeatMs: config.heartbeatSeconds * 1000,
    closing: closing.signal,
    authenticated,
  });

  const document = openApiDocument(version);
  app.get("/openapi.json", async () => document);

  app.get("/healthz", async (_request, reply) => {
    try {
      const jobs = await store.countByState();
      return { status: "ok", jobs };
    } catch {
      return reply.code(503).send({ status: "unavailable" });
    }
  });

  app.get("/metrics", authenticated, async (_request, reply) =>
    reply.type("text/plain; version=0.0.4; charset=utf-8").send(await metrics.text()),
  );

  const web = config.web ?? packageFile("web");
  if (existsSync(web) && statSync(web).isDirectory()) {
    await app.register(fastifyStatic, { root: web, prefix: "/", index: ["index.html"], dotfiles: "deny" });
  } else {
    app.get("/", async () => {
      throw new ApiError(404, "not-found", `the web page's folder ${web} is missing`);
    });
  }

  return {
    app,
    routes,
    async listen(where = {}) {
      await app.listen({ host: where.host ?? config.host, port: where.port ?? config.port });
      metrics.start(config.metricsPollMs);
      const address = app.server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      return `${tls ? "https" : "http"}://${host}:${address.port}`;
    },
    async close() {
      closing.abort();
      await metrics.stop();
      await app.close();
      await audit.close();
    },
  };
}

function identify(tokens: ApiTokens, authorization: string | undefined): Principal | undefined {
  const match = authorization === undefined ? null : /^Bearer\s+(\S{1,512})\s*$/i.exec(authorization);
  return match ? tokens.identify(match[1]!) : undefined;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(packageFile("package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
}
