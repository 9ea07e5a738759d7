/**
 * A real API server on a random port of 127.0.0.1 over a real SQLite job store in a temporary folder, with a
 * tokens file of three tokens (alice: convert/clean/migrate on local stores; bob: convert only; root: admin),
 * allowed folders in/ (read) and out/ (write), and an audit log file. Requests go over HTTP with fetch.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { createApiServer, type ApiServer } from "../../../src/service/api/api-server.js";
import { newApiToken } from "../../../src/service/api/api-tokens.js";
import { SqliteJobStore } from "../../../src/service/sqlite-job-store.js";
import { ApiConfigSchema, type ApiConfig } from "../../../src/service/service-config.js";

export interface ApiFixture {
  readonly dir: string;
  readonly inDir: string;
  readonly outDir: string;
  readonly store: SqliteJobStore;
  readonly server: ApiServer;
  readonly url: string;
  readonly tokens: { alice: string; bob: string; root: string };
  readonly auditFile: string;
  /** fetch against the server with alice's token unless another is given (null: none). */
  request(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export async function startApi(
  overrides: Partial<ApiConfig> = {},
  listen: (server: ApiServer) => Promise<string> = (s) => s.listen({ host: "127.0.0.1", port: 0 }),
): Promise<ApiFixture> {
  const dir = mkdtempSync(join(tmpdir(), "chromogenic-api-"));
  const inDir = join(dir, "in");
  const outDir = join(dir, "out");
  mkdirSync(inDir);
  mkdirSync(outDir);
  mkdirSync(join(dir, "web"));
  const alice = newApiToken("alice", {
    clouds: [`local:${inDir}`, `local:${outDir}`],
    kinds: ["convert", "clean", "migrate"],
  });
  const bob = newApiToken("bob", { kinds: ["convert"] });
  const root = newApiToken("root", { clouds: ["*"], kinds: ["*"], admin: true });
  const tokensFile = join(dir, "tokens.yaml");
  writeFileSync(tokensFile, toYaml({ tokens: [alice.entry, bob.entry, root.entry] }), { mode: 0o600 });
  const auditFile = join(dir, "audit.jsonl");
  const config = ApiConfigSchema.parse({
    tokens: tokensFile,
    auditLog: auditFile,
    eventPollMs: 20,
    metricsPollMs: 100,
    web: join(dir, "web"),
    ...overrides,
  });
  const store = await SqliteJobStore.open(join(dir, "jobs.sqlite"));
  const server = await createApiServer({ store, config, folders: { read: [inDir], write: [outDir] } });
  const url = await listen(server);
  const tokens = { alice: alice.token, bob: bob.token, root: root.token };
  return {
    dir,
    inDir,
    outDir,
    store,
    server,
    url,
    tokens,
    auditFile,
    request(path, init = {}) {
      const { token = tokens.alice, headers, ...rest } = init;
      const all = new Headers(headers);
      if (token !== null) all.set("authorization", `Bearer ${token}`);
      return fetch(url + path, { ...rest, headers: all });
    },
    async close() {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A POST of `body` as JSON. */
export function postJson(
  body: unknown,
  init: RequestInit & { token?: string | null } = {},
): RequestInit & { token?: string | null } {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json");
  return { ...init, method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) };
}
