/**
 * Service API benchmark: how fast `GET /v1/jobs` answers with 10,000 jobs stored (issue 19's target: under 50 ms
 * at the 95th percentile).
 *
 *   npm run bench:service [-- --jobs N --requests N]
 *
 * Setup (untimed): a SQLite job store in a temporary folder is filled with N jobs (default 10,000) of four owners,
 * a mix of kinds, and states spread as a busy service has them (most finished, some running, the rest queued,
 * each with progress or a result); the API (createApiServer, the same as `chromogenic serve`) listens on
 * 127.0.0.1 with a tokens file of an admin and an ordinary token. Then, over HTTP with keep-alive, one request at
 * a time, each case is timed `--requests` times (default 400) after 20 untimed warm-up requests:
 *
 *   admin first page     GET /v1/jobs?limit=50 as the admin (every owner's jobs)
 *   owner first page     the same as an ordinary token (its own jobs: the owner index)
 *   owner + state        ?state=queued&limit=50 as an ordinary token (two filters, one index)
 *   owner + rare state   ?state=failed&limit=50 as an ordinary token (few matches, spread over the oldest jobs)
 *   kind none has        ?kind=clean&limit=50 as the admin (no such job: the worst case, every row looked at)
 *   limit 200            ?limit=200 as the admin (the largest page)
 *   deep pages           every page of the admin's listing walked by cursor, ?limit=50, to the last one
 *
 * and prints p50, p95 and max in milliseconds, client side (request sent to body read), with the target for p95.
 * The server and the client share this process, so the figures include the client's own time: an upper bound.
 *
 * Exit status: 0 when everything ran (a missed target is reported, not a failure); 1 when something failed.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Agent, request } from "undici";
import { stringify as toYaml } from "yaml";
import { createApiServer } from "../src/service/api/api-server.js";
import { newApiToken } from "../src/service/api/api-tokens.js";
import type { JobSpec } from "../src/service/job-spec.js";
import { ApiConfigSchema } from "../src/service/service-config.js";
import { SqliteJobStore } from "../src/service/sqlite-job-store.js";
import { benchFail, machineLine } from "./bench-context.js";

const BENCH = "service-bench";
const TARGET_P95_MS = 50;

function options(argv: readonly string[]): { jobs: number; requests: number } {
  let jobs = 10_000;
  let requests = 400;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--jobs") jobs = Number(argv[++i]);
    else if (argv[i] === "--requests") requests = Number(argv[++i]);
    else
      benchFail(BENCH, `unknown option ${argv[i]}\nusage: node dist/bench/service-bench.js [--jobs N] [--requests N]`);
  }
  if (!Number.isInteger(jobs) || jobs < 100) benchFail(BENCH, "--jobs needs an integer of at least 100");
  if (!Number.isInteger(requests) || requests < 20) benchFail(BENCH, "--requests needs an integer of at least 20");
  return { jobs, requests };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** A job as a busy service holds it: spec of its kind, owner, and a state with progress or result. */
function specFor(i: number): JobSpec {
  if (i % 3 === 0)
    return {
      kind: "migrate",
      source: { cloud: "openstack-a", image: `image-${i}` },
      destination: { kind: "cloud", cloud: "local:/srv/images", name: `copy-${i}` },
      clean: { profile: "default" },
    };
  if (i % 3 === 1)
    return {
      kind: "export",
      source: { cloud: "openstack-a", instance: `instance-${i}` },
      destination: { kind: "file", path: `/srv/exports/vm-${i}.ova`, format: "ova", target: "virtualbox" },
    };
  return {
    kind: "convert",
    input: `/srv/images/disk-${i}.raw`,
    output: `/srv/exports/disk-${i}.qcow2`,
    format: "qcow2",
  };
}

async function fill(store: SqliteJobStore, count: number): Promise<void> {
  const owners = ["portal", "alice", "bob", "carol"];
  for (let i = 0; i < count; i++) await store.submit({ spec: specFor(i), owner: owners[i % owners.length]! });
  // Claim in submission order: the oldest 85% finish, the next 5% run, the newest stay queued.
  const finished = Math.floor(count * 0.85);
  const running = Math.floor(count * 0.05);
  for (let i = 0; i < finished + running; i++) {
    const job = (await store.claim("bench-worker", 3_600_000))!;
    const progress = { phase: "upload", bytes: 2 ** 30, total: 2 ** 31, bytesPerSecond: 1e8, etaSeconds: 10 };
    await store.update(job.id, "bench-worker", { progress });
    if (i < finished) {
      const failed = i % 20 === 1;
      await store.finish(job.id, "bench-worker", {
        state: failed ? "failed" : "succeeded",
        ...(failed
          ? { error: { code: "ETRANSFER", message: "the connection dropped" } }
          : { result: { image: `img-${i}`, bytes: { download: 2 ** 31, upload: 2 ** 30 } } }),
      });
    }
  }
}

async function main(): Promise<void> {
  const { jobs, requests } = options(process.argv.slice(2));
  console.log(machineLine(1));
  const dir = mkdtempSync(join(tmpdir(), "chromogenic-service-bench-"));
  const dispatcher = new Agent({ connections: 1, pipelining: 1 });
  try {
    const admin = newApiToken("admin", { clouds: ["*"], kinds: ["*"], admin: true });
    const alice = newApiToken("alice", { clouds: ["*"], kinds: ["*"] });
    const tokensFile = join(dir, "tokens.yaml");
    writeFileSync(tokensFile, toYaml({ tokens: [admin.entry, alice.entry] }), { mode: 0o600 });
    const store = await SqliteJobStore.open(join(dir, "jobs.sqlite"));
    let started = performance.now();
    await fill(store, jobs);
    console.log(`stored ${jobs} jobs in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const config = ApiConfigSchema.parse({
      tokens: tokensFile,
      auditLog: join(dir, "audit.jsonl"),
      rateLimit: { max: 1_000_000, windowSeconds: 60 },
      web: join(dir, "web"),
    });
    const server = await createApiServer({ store, config, folders: { read: [], write: [] } });
    const url = await server.listen({ host: "127.0.0.1", port: 0 });

    async function get(path: string, token: string): Promise<{ ms: number; body: { jobs: unknown[]; next?: string } }> {
      const t0 = performance.now();
      const answer = await request(url + path, { dispatcher, headers: { authorization: `Bearer ${token}` } });
      const body = (await answer.body.json()) as { jobs: unknown[]; next?: string };
      const ms = performance.now() - t0;
      if (answer.statusCode !== 200) throw new Error(`${path}: HTTP ${answer.statusCode} ${JSON.stringify(body)}`);
      return { ms, body };
    }

    const results: { name: string; samples: number[]; note: string }[] = [];
    const cases: [string, string, string][] = [
      ["admin first page", "/v1/jobs?limit=50", admin.token],
      ["owner first page", "/v1/jobs?limit=50", alice.token],
      ["owner + state", "/v1/jobs?state=queued&limit=50", alice.token],
      ["owner + rare state", "/v1/jobs?state=failed&limit=50", alice.token],
      ["kind none has", "/v1/jobs?kind=clean&limit=50", admin.token],
      ["limit 200", "/v1/jobs?limit=200", admin.token],
    ];
    for (const [name, path, token] of cases) {
      for (let i = 0; i < 20; i++) await get(path, token);
      const samples: number[] = [];
      let size = 0;
      for (let i = 0; i < requests; i++) {
        const { ms, body } = await get(path, token);
        samples.push(ms);
        size = body.jobs.length;
      }
      results.push({ name, samples, note: `${size} jobs a page` });
    }
    started = performance.now();
    const deep: number[] = [];
    let pages = 0;
    while (deep.length < requests) {
      let cursor: string | undefined;
      do {
        const { ms, body } = await get(`/v1/jobs?limit=50${cursor ? `&cursor=${cursor}` : ""}`, admin.token);
        deep.push(ms);
        pages++;
        cursor = body.next;
      } while (cursor);
    }
    results.push({ name: "deep pages", samples: deep, note: `${pages} pages walked to the end by cursor` });

    console.log(
      `\n${"case".padEnd(19)} ${"p50 ms".padStart(8)} ${"p95 ms".padStart(8)} ${"max ms".padStart(8)}  target p95 < ${TARGET_P95_MS} ms`,
    );
    for (const { name, samples, note } of results) {
      const sorted = [...samples].sort((a, b) => a - b);
      const p95 = percentile(sorted, 95);
      console.log(
        `${name.padEnd(19)} ${percentile(sorted, 50).toFixed(2).padStart(8)} ${p95.toFixed(2).padStart(8)} ` +
          `${sorted.at(-1)!.toFixed(2).padStart(8)}  ${p95 < TARGET_P95_MS ? "met" : "MISSED"} (${samples.length} requests; ${note})`,
      );
    }
    await server.close();
    await store.close();
  } finally {
    await dispatcher.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => benchFail(BENCH, e instanceof Error ? (e.stack ?? e.message) : String(e)));
