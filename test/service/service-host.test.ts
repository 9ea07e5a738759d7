/**
 * The service as it is deployed: `chromogenic serve` (API only) on this machine and two `chromogenic worker`
 * processes on two "hosts" — network namespaces on a bridge (test/helpers/netns-hosts.ts) — sharing nothing but
 * PostgreSQL (the job store), Redis (BullMQ) and the files of the local stores; all three read one
 * configuration file. Load: 200 small jobs (100 conversions, 100 local-store migrations) submitted at once by
 * 20 clients over HTTP; every job succeeds exactly once — each conversion's output equals its input, the
 * destination store holds exactly one image per migration. Then the same with a worker killed (SIGKILL) every
 * few seconds and started again, and the API itself killed and started again in the middle: the jobs a worker
 * held are taken over when their lease runs out, none lost, none done twice, the event logs whole.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { LocalProvider } from "../../src/providers/local/local-provider.js";
import type { JobSpec } from "../../src/service/job-spec.js";
import { makeNetnsHosts, type NetnsHost } from "../helpers/netns-hosts.js";
import {
  dropSchema,
  onHost,
  postgresUrl,
  redisUrl,
  requirePostgres,
  requireRedis,
  uniqueName,
} from "../helpers/service-infra.js";
import { CLI, qemuCompare, runCli, scratch } from "../helpers/tools.js";
import { localMigrate, randomDisk, storeDisk } from "./helpers/worker-fixtures.js";

const CLIENTS = 20;
const JOBS = 200;

interface Deployment {
  readonly dir: string;
  readonly url: string;
  readonly token: string;
  readonly source: string;
  readonly destination: string;
  readonly disk: string;
  readonly image: string;
  startWorker(n: number): ChildProcess;
  restartServe(): Promise<void>;
}

async function deploy(t: Parameters<typeof scratch>[0]): Promise<Deployment> {
  await requirePostgres();
  await requireRedis();
  const dir = await scratch(t, "chromogenic-service-host-");
  const net = await makeNetnsHosts(2);
  t.after(() => net.close());
  const schema = uniqueName("service_host");
  t.after(() => dropSchema(schema));
  const files = join(dir, "files");
  await mkdir(join(files, "out"), { recursive: true });
  const source = join(files, "source");
  const destination = join(files, "destination");
  const disk = await randomDisk(join(files, "disk.raw"), 1);
  const image = await storeDisk(source, disk, "small");
  const tokens = join(dir, "tokens.yaml");
  const made = await runCli(["token", "create", "portal", "--tokens", tokens, "--cloud", "*", "--kind", "*"], {});
  assert.equal(made.code, 0, made.stderr);
  const config = join(dir, "service.yaml");
  await writeFile(
    config,
    stringifyYaml({
      // The bridge address: the one the namespaced hosts reach PostgreSQL and Redis by.
      store: `${onHost(postgresUrl, net.bridge)}?schema=${schema}`,
      redis: onHost(redisUrl, net.bridge),
      queue: schema,
      folders: { read: [files], write: [files] },
      workers: { slots: 2, leaseSeconds: 4, stopSeconds: 2, minFreeGiB: 0 },
      api: { tokens, port: 0, rateLimit: { max: 10_000, windowSeconds: 60 } },
    }),
  );
  let serve: ChildProcess | undefined;
  t.after(() => {
    serve?.kill("SIGKILL");
  });
  const startServe = (listen: string) =>
    new Promise<string>((resolve, reject) => {
      serve = spawn(process.execPath, [CLI, "serve", "--config", config, "--slots", "0", "--listen", listen], {
        env: { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, "serve-state") },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      serve.stderr!.on("data", (d) => {
        err += d;
        const m = /API at (http:\/\/\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      serve.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
    });
  const url = await startServe("127.0.0.1:0");
  /** The API killed (SIGKILL) and started again on the same address, its jobs and queue where they were. */
  const restartServe = async () => {
    const exited = new Promise((r) => serve!.once("exit", r));
    serve!.kill("SIGKILL");
    await exited;
    assert.equal(await startServe(new URL(url).host), url);
  };
  const workers: ChildProcess[] = [];
  t.after(() => {
    for (const w of workers) w.kill("SIGKILL");
  });
  const startWorker = (n: number) => {
    const host: NetnsHost = net.hosts[n % 2]!;
    const worker = host.spawn(process.execPath, [CLI, "worker", "--config", config], {
      env: { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, `worker-state-${n}`) },
      stdio: "ignore",
    });
    workers.push(worker);
    return worker;
  };
  return { dir, url, token: made.stdout.trim(), source, destination, disk, image, startWorker, restartServe };
}

/** Half conversions, half migrations, each with an output of its own. */
function jobSpecs(d: Deployment, round: string): JobSpec[] {
  return Array.from({ length: JOBS }, (_, i): JobSpec => {
    if (i % 2 === 0) {
      return {
        kind: "convert",
        input: d.disk,
        output: join(d.dir, "files", "out", `${round}-${i}.qcow2`),
        format: "qcow2",
      };
    }
    const spec = localMigrate(d.source, d.image, d.destination);
    if (spec.kind !== "migrate" || spec.destination.kind !== "cloud") throw new Error("a migrate to a store");
    return { ...spec, destination: { ...spec.destination, name: `${round}-${i}` } };
  });
}

/** Submits every spec from CLIENTS concurrent clients (each its own idempotency keys); the job ids in order. */
async function submitAll(d: Deployment, specs: readonly JobSpec[], round: string): Promise<string[]> {
  const ids: string[] = new Array(specs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < specs.length; i = next++) {
        const r = await fetch(`${d.url}/v1/jobs`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${d.token}`,
            "content-type": "application/json",
            "idempotency-key": `${round}-${i}`,
          },
          body: JSON.stringify(specs[i]),
        });
        assert.equal(r.status, 201, await r.clone().text());
        ids[i] = ((await r.json()) as { id: string }).id;
      }
    }),
  );
  return ids;
}

interface JobRecord {
  id: string;
  state: string;
  attempts: number;
  error?: unknown;
}

/** Waits until every job is finished; their records. */
async function allFinished(d: Deployment, ids: readonly string[], timeoutMs: number): Promise<JobRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await Promise.all(
      ids.map(async (id) => {
        const r = await fetch(`${d.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${d.token}` } });
        return (await r.json()) as JobRecord;
      }),
    );
    const open = records.filter((j) => !["succeeded", "failed", "cancelled"].includes(j.state));
    if (open.length === 0) return records;
    if (Date.now() > deadline) throw new Error(`${open.length} job(s) unfinished, e.g. ${JSON.stringify(open[0])}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Every job succeeded; conversions equal their input; one image per migration in the destination. */
async function verify(d: Deployment, specs: readonly JobSpec[], records: readonly JobRecord[], round: string) {
  const failed = records.filter((j) => j.state !== "succeeded");
  assert.deepEqual(failed, [], "every job succeeded");
  const names = new Map<string, number>();
  for await (const image of new LocalProvider(d.destination).listImages()) {
    if (image.name.startsWith(`${round}-`)) names.set(image.name, (names.get(image.name) ?? 0) + 1);
  }
  for (const [i, spec] of specs.entries()) {
    if (spec.kind === "convert") {
      const compared = await qemuCompare(d.disk, spec.output);
      assert.equal(compared.code, 0, `job ${i}: ${compared.stdout}`);
    } else {
      assert.equal(names.get(`${round}-${i}`), 1, `migration ${i} made exactly one image`);
    }
  }
  assert.equal(names.size, JOBS / 2, "no image beyond the jobs'");
}

test("200 jobs from 20 clients through serve and two workers on two hosts; then with workers killed", async (t) => {
  const d = await deploy(t);
  const live = [d.startWorker(0), d.startWorker(1)];

  const calm = jobSpecs(d, "calm");
  const calmRecords = await allFinished(d, await submitAll(d, calm, "calm"), 600_000);
  await verify(d, calm, calmRecords, "calm");
  assert.ok(
    calmRecords.every((j) => j.attempts === 1),
    "with no worker lost, every job ran once",
  );

  const rough = jobSpecs(d, "rough");
  const ids = await submitAll(d, rough, "rough");
  let kills = 0;
  let n = 2;
  const killer = setInterval(() => {
    const victim = live.shift()!;
    victim.kill("SIGKILL");
    kills++;
    live.push(d.startWorker(n++));
  }, 3000);
  let records: JobRecord[];
  try {
    await new Promise((r) => setTimeout(r, 4000));
    await d.restartServe();
    records = await allFinished(d, ids, 900_000);
  } finally {
    clearInterval(killer);
  }
  assert.ok(kills >= 2, `workers were killed while the jobs ran (${kills})`);
  await verify(d, rough, records, "rough");
  // The event log of a job that ran across the API's restart: whole, in order, ending with the CLI's done.
  const stream = await fetch(`${d.url}/v1/jobs/${ids[ids.length - 1]}/events`, {
    headers: { authorization: `Bearer ${d.token}` },
  });
  const text = await stream.text();
  const seqs = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  const last = [...text.matchAll(/^data: (\{"event":"\w+")/gm)].at(-1)?.[1] ?? "";
  assert.match(last, /"event":"done"/, "the last event of the job is the CLI's done");
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
    "events numbered 1, 2, … with none missing",
  );
  t.diagnostic(
    `${kills} workers killed; ${records.filter((j) => j.attempts > 1).length} job(s) taken over by another worker`,
  );
});
