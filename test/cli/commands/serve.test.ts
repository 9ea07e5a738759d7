/**
 * `chromogenic serve`, `worker` and `token create` as an operator runs them, as real processes:
 * - `token create`: the token printed once, only its SHA-256 in the file (mode 0600), a second token of the
 *   same name refused;
 * - `serve` with no configuration: its first start makes an administrator's token; a convert job submitted over
 *   HTTP runs in its own workers (output checked with qemu-img), a path outside --allow-read is refused;
 *   SIGTERM ends it with status 0;
 * - `serve --slots 0 --redis --store postgres://…` and two `worker` processes: jobs go through BullMQ on the
 *   real Redis, run on the workers, and end once each.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CLI, makeRaw, pattern, qemuCompare, runCli, scratch } from "../../helpers/tools.js";
import {
  dropSchema,
  postgresUrl,
  redisUrl,
  requirePostgres,
  requireRedis,
  uniqueName,
} from "../../helpers/service-infra.js";

const MiB = 2 ** 20;

interface Running {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly stdout: () => string;
}

/** Starts `chromogenic ARGS` and waits until its stderr says `ready`. */
async function started(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Running> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 60 s: ${err}`)), 60_000);
    child.stderr!.on("data", (d) => {
      err += d;
      if (ready.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before it was ready: ${err}`));
    });
  });
  return { child, stderr: () => err, stdout: () => out };
}

/** SIGTERM, then its exit status. */
async function stopped(running: Running): Promise<number | null> {
  const exit = new Promise<number | null>((resolve) => running.child.on("exit", (code) => resolve(code)));
  running.child.kill("SIGTERM");
  return exit;
}

async function api(url: string, token: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
  });
}

/** Polls a job until it is finished; its record. */
async function finished(url: string, token: string, id: string): Promise<{ state: string; error?: unknown }> {
  for (let i = 0; i < 600; i++) {
    const job = (await (await api(url, token, `/v1/jobs/${id}`)).json()) as { state: string };
    if (["succeeded", "failed", "cancelled"].includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`job ${id} did not finish in 2 minutes`);
}

test("token create: printed once, stored as its SHA-256 only, owner-readable; a name taken is refused", async (t) => {
  const dir = await scratch(t, "chromogenic-token-");
  const file = join(dir, "tokens.yaml");
  const r = await runCli(["token", "create", "portal", "--tokens", file, "--cloud", "a1", "--kind", "migrate"], {});
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  assert.match(token, /^cgt_[A-Za-z0-9_-]{43}$/);
  const text = await readFile(file, "utf8");
  assert.ok(!text.includes(token), "the token itself is not stored");
  assert.ok(text.includes(createHash("sha256").update(token).digest("hex")), "its SHA-256 is");
  assert.match(text, /- migrate/);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const again = await runCli(["token", "create", "portal", "--tokens", file], {});
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already has a token named "portal"/);
  const badKind = await runCli(["token", "create", "other", "--tokens", file, "--kind", "mine-bitcoin"], {});
  assert.notEqual(badKind.code, 0);
  assert.match(badKind.stderr, /token "other"/);
});

test("serve alone: an administrator's token on first start, a convert job run by its workers, SIGTERM ends it", async (t) => {
  const dir = await scratch(t, "chromogenic-serve-");
  const env = { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, "state") };
  await mkdir(join(dir, "in"));
  await mkdir(join(dir, "out"));
  const input = join(dir, "in", "disk.raw");
  await makeRaw(input, 8 * MiB, [{ offset: MiB, data: pattern(2 * MiB, 7) }]);
  const serve = await started(
    ["serve", "--listen", "127.0.0.1:0", "--allow-read", join(dir, "in"), "--allow-write", join(dir, "out")],
    env,
    /API at (http:\/\/\S+)/,
  );
  t.after(() => serve.child.kill("SIGKILL"));
  const url = /API at (http:\/\/\S+)/.exec(serve.stderr())![1]!;
  const token = serve.stdout().trim();
  assert.match(token, /^cgt_/, "the first start prints an administrator's token");
  const output = join(dir, "out", "disk.qcow2");
  const submitted = await api(url, token, "/v1/jobs", {
    method: "POST",
    body: JSON.stringify({ kind: "convert", input, output, format: "qcow2" }),
  });
  assert.equal(submitted.status, 201, await submitted.clone().text());
  const { id } = (await submitted.json()) as { id: string };
  const job = await finished(url, token, id);
  assert.equal(job.state, "succeeded", JSON.stringify(job));
  assert.equal((await qemuCompare(input, output)).code, 0, "the output holds the input's disk");
  const outside = await api(url, token, "/v1/jobs", {
    method: "POST",
    body: JSON.stringify({ kind: "convert", input: "/etc/shadow", output: join(dir, "out", "x.raw"), format: "raw" }),
  });
  assert.equal(outside.status, 400, "a path outside --allow-read is refused");
  assert.equal(await stopped(serve), 0);
});

test("serve --slots 0 on PostgreSQL and Redis, two worker processes: every job runs on a worker, once", async (t) => {
  await requirePostgres();
  await requireRedis();
  const dir = await scratch(t, "chromogenic-serve-redis-");
  const env = { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, "state") };
  await mkdir(join(dir, "in"));
  await mkdir(join(dir, "out"));
  const input = join(dir, "in", "disk.raw");
  await makeRaw(input, 4 * MiB, [{ offset: 0, data: pattern(MiB, 3) }]);
  // A schema and a queue of the test's own: other services' jobs in the same database and Redis stay theirs.
  const schema = uniqueName("serve_cli");
  const shared = ["--store", `${postgresUrl}?schema=${schema}`, "--redis", redisUrl, "--queue", schema];
  t.after(() => dropSchema(schema));
  const serve = await started(
    [
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--slots",
      "0",
      ...shared,
      "--allow-read",
      join(dir, "in"),
      "--allow-write",
      join(dir, "out"),
    ],
    env,
    /API at (http:\/\/\S+)/,
  );
  t.after(() => serve.child.kill("SIGKILL"));
  const url = /API at (http:\/\/\S+)/.exec(serve.stderr())![1]!;
  const token = serve.stdout().trim();
  const workers: Running[] = [];
  for (const n of [1, 2]) {
    const worker = await started(
      ["worker", ...shared, "--slots", "1", "--allow-read", join(dir, "in"), "--allow-write", join(dir, "out")],
      { ...env, CHROMOGENIC_STATE_DIR: join(dir, `worker-${n}`) },
      /slot\(s\) on the BullMQ queue/,
    );
    t.after(() => worker.child.kill("SIGKILL"));
    workers.push(worker);
  }
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await api(url, token, "/v1/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "convert", input, output: join(dir, "out", `disk-${i}.qcow2`), format: "qcow2" }),
    });
    assert.equal(r.status, 201, await r.clone().text());
    ids.push(((await r.json()) as { id: string }).id);
  }
  for (const [i, id] of ids.entries()) {
    const job = (await finished(url, token, id)) as { state: string; attempts?: number; worker?: string };
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.equal(job.attempts, 1, "run once");
    assert.equal((await qemuCompare(input, join(dir, "out", `disk-${i}.qcow2`))).code, 0);
  }
  for (const worker of workers) assert.equal(await stopped(worker), 0, worker.stderr());
  assert.equal(await stopped(serve), 0, serve.stderr());
});
