/**
 * One job run by the service's runner on a real SQLite job store, compared with the CLI running the same job:
 * the same events in order ending with the same `done` or `error` event, the output verified by qemu-img; a
 * lost lease stops the work without finishing the job or writing anything more.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { access, chmod, mkdir, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runServiceJob } from "../../src/service/job-runner.js";
import type { JobSpec } from "../../src/service/job-spec.js";
import { resolveAllowedFolders } from "../../src/service/service-paths.js";
import { SqliteJobStore } from "../../src/service/sqlite-job-store.js";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { eventLines } from "../helpers/event-lines.js";
import { qemuCompare, qemuInfo, scratch } from "../helpers/tools.js";
import { randomDisk, storedEvents, waitForEvent } from "./helpers/worker-fixtures.js";

const MiB = 2 ** 20;
// The library's job records go to a folder of this suite's own.
const stateDir = mkdtempSync(join(tmpdir(), "chromogenic-runner-state-"));
process.env.CHROMOGENIC_STATE_DIR = stateDir;
after(() => rmSync(stateDir, { recursive: true, force: true }));

async function openStore(dir: string): Promise<SqliteJobStore> {
  return SqliteJobStore.open(join(dir, "jobs.sqlite"));
}

/** A user without root, to run as. */
const NOBODY = { uid: 65534, gid: 65534 };

/** `node ARGS` (as `user` when given): its stdout and exit code. */
function node(args: readonly string[], user?: typeof NOBODY): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, CHROMOGENIC_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "ignore"],
    ...user,
  });
  let stdout = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout })));
}

/** `chromogenic ARGS --json`: its events (checked by the schema) and exit code. */
async function cli(args: readonly string[], user?: typeof NOBODY) {
  const { code, stdout } = await node(["bin/chromogenic.js", ...args, "--json"], user);
  return { code, events: eventLines(stdout) };
}

/** The event kinds in order, consecutive progress events of a phase counted once. */
function shape(events: readonly { event: string; phase?: string; state?: string }[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const name = [e.event, e.phase, e.state].filter(Boolean).join(":");
    if (out.at(-1) !== name || e.event !== "progress") out.push(name);
  }
  return out;
}

async function claimAndRun(store: SqliteJobStore, spec: JobSpec) {
  const { job } = await store.submit({ spec, owner: "tester" });
  const held = await store.claim("w1", 30_000);
  assert.equal(held?.id, job.id);
  const end = await runServiceJob(store, held!, { worker: "w1", leaseMs: 30_000, progressIntervalMs: 50 });
  return { end, job: (await store.get(job.id))!, events: await storedEvents(store, job.id) };
}

test("a convert job runs as `chromogenic convert` does: same events in order, same done event, same output", async (t) => {
  const dir = await scratch(t);
  const store = await openStore(dir);
  t.after(() => store.close());
  const input = join(dir, "sample.raw");
  await makeSampleImage(input, 64 * MiB);
  const output = join(dir, "service.qcow2");
  const { end, job, events } = await claimAndRun(store, { kind: "convert", input, output, format: "qcow2" });
  assert.equal(end, "succeeded");
  assert.equal(job.state, "succeeded");
  assert.equal((await qemuCompare(input, output)).code, 0, "the output holds the input's content");
  assert.equal((await qemuInfo(output)).format, "qcow2");

  const local = await cli(["convert", "-O", "qcow2", input, join(dir, "cli.qcow2")]);
  assert.equal(local.code, 0);
  assert.deepEqual(shape(events), shape(local.events), "the same events in the same order");
  const done = events.at(-1)!;
  const cliDone = local.events.at(-1)!;
  assert.equal(done.event, "done");
  assert.deepEqual(Object.keys(done).sort(), Object.keys(cliDone).sort(), "the done event carries the same fields");
  assert.equal((done as { virtualSize?: number }).virtualSize, (cliDone as { virtualSize?: number }).virtualSize);
  assert.equal(job.result?.output, output, "the result is stored with the job");
  const lastProgress = events.findLast((e) => e.event === "progress");
  assert.equal(lastProgress?.event, "progress");
  assert.deepEqual(
    job.progress,
    {
      phase: lastProgress.phase,
      bytes: lastProgress.bytes,
      total: lastProgress.total,
      bytesPerSecond: lastProgress.rate,
      ...(lastProgress.eta !== null ? { etaSeconds: lastProgress.eta } : {}),
    },
    "the job's progress summary is its last progress event",
  );
});

test("a failing job ends with the CLI's own error event; the job fails with its code and sentence", async (t) => {
  const dir = await scratch(t);
  const store = await openStore(dir);
  t.after(() => store.close());
  const input = join(dir, "missing.raw");
  const { end, job, events } = await claimAndRun(store, {
    kind: "convert",
    input,
    output: join(dir, "out.qcow2"),
    format: "qcow2",
  });
  assert.equal(end, "failed");
  const local = await cli(["convert", "-O", "qcow2", input, join(dir, "cli.qcow2")]);
  assert.notEqual(local.code, 0);
  assert.deepEqual(events.at(-1), local.events.at(-1), "the very same error event");
  const error = local.events.at(-1) as { code: string; message: string };
  assert.deepEqual(job.error, { code: error.code, message: error.message });
  assert.match(error.message, /missing\.raw/);
});

test("a clean job runs as `chromogenic clean` does (as root)", async (t) => {
  assert.equal(process.getuid?.(), 0, "cleaning attaches loop devices and mounts: this test needs root");
  const dir = await scratch(t);
  const store = await openStore(dir);
  t.after(() => store.close());
  const input = join(dir, "sample.raw");
  await makeSampleImage(input, 64 * MiB);
  const { end, job, events } = await claimAndRun(store, { kind: "clean", input, output: join(dir, "svc.raw") });
  assert.equal(end, "succeeded", JSON.stringify(job.error));
  const local = await cli(["clean", input, join(dir, "cli.raw")]);
  assert.equal(local.code, 0);
  assert.deepEqual(shape(events), shape(local.events), "the same events in the same order");
  const ops = (e: unknown) => (e as { operations: { name: string }[] }).operations.map((o) => o.name);
  assert.deepEqual(ops(events.at(-1)), ops(local.events.at(-1)), "the same operations reported");
});

test("a clean job without root fails before touching anything, with the CLI's own error event", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "sample.raw");
  await makeSampleImage(input, 16 * MiB);
  await chmod(dir, 0o755);
  // A worker process of its own, as a user without root, on a store in its memory.
  const script = `
    const { SqliteJobStore } = await import(${JSON.stringify(new URL("../../src/service/sqlite-job-store.js", import.meta.url).href)});
    const { runServiceJob } = await import(${JSON.stringify(new URL("../../src/service/job-runner.js", import.meta.url).href)});
    const store = await SqliteJobStore.open(":memory:");
    const spec = { kind: "clean", input: ${JSON.stringify(input)}, output: "/nonexistent/out.raw" };
    const { job } = await store.submit({ spec, owner: "t" });
    const end = await runServiceJob(store, await store.claim("w", 30000), { worker: "w", leaseMs: 30000 });
    const events = (await store.events(job.id, 0, 100)).map((e) => e.event);
    process.stdout.write(JSON.stringify({ end, job: await store.get(job.id), events }));`;
  const run = await node(["--input-type=module", "-e", script], NOBODY);
  assert.equal(run.code, 0, "the worker process itself runs without root");
  const { end, job, events } = JSON.parse(run.stdout) as {
    end: string;
    job: { state: string; error?: unknown };
    events: unknown[];
  };
  assert.equal(end, "failed");
  const local = await cli(["clean", input, "/nonexistent/out.raw"], NOBODY);
  assert.deepEqual(events, [local.events.at(-1)], "nothing ran: only the CLI's error event");
  assert.match((local.events.at(-1) as { message: string }).message, /clean needs root/);
  assert.deepEqual(job.error, {
    code: (local.events.at(-1) as { code: string }).code,
    message: (local.events.at(-1) as { message: string }).message,
  });
});

test("a path that leads out of the allowed folders since it was submitted fails the job; nothing is read", async (t) => {
  const dir = await scratch(t);
  const store = await openStore(dir);
  t.after(() => store.close());
  await mkdir(join(dir, "in"));
  await mkdir(join(dir, "out"));
  const secret = join(dir, "secret.raw");
  await makeSampleImage(secret, 16 * MiB);
  // Planted after the API checked the job: the allowed input is now a link to a file outside.
  await symlink(secret, join(dir, "in", "disk.raw"));
  const output = join(dir, "out", "disk.qcow2");
  const { job } = await store.submit({
    spec: { kind: "convert", input: join(dir, "in", "disk.raw"), output, format: "qcow2" },
    owner: "tester",
  });
  const folders = await resolveAllowedFolders({ read: [join(dir, "in")], write: [join(dir, "out")] });
  const held = (await store.claim("w1", 30_000))!;
  assert.equal(await runServiceJob(store, held, { worker: "w1", leaseMs: 30_000, folders }), "failed");
  const failed = await store.get(job.id);
  assert.equal(failed?.error?.code, "EUSAGE");
  assert.match(failed?.error?.message ?? "", /^input: /);
  const events = await storedEvents(store, job.id);
  assert.deepEqual(
    events.map((e) => e.event),
    ["error"],
    "refused before any work",
  );
  await assert.rejects(access(output));
});

test("a job whose lease another worker took stops at once, finishing nothing and writing no more", async (t) => {
  const dir = await scratch(t);
  const store = await openStore(dir);
  t.after(() => store.close());
  // Large enough that the conversion is still running when the lease is found lost (within a renewal).
  const input = await randomDisk(join(dir, "big.raw"), 1536);
  const output = join(dir, "out.qcow2");
  const { job } = await store.submit({ spec: { kind: "convert", input, output, format: "qcow2" }, owner: "tester" });
  const held = (await store.claim("w1", 900))!;
  const running = runServiceJob(store, held, { worker: "w1", leaseMs: 900, progressIntervalMs: 50 });
  await waitForEvent(store, job.id, (e) => e.event === "progress");
  // Another worker takes the job: as after w1's lease ran out while it was cut off from the store.
  assert.equal(await store.release(job.id, "w1"), true);
  const taken = await store.claim("w2", 60_000);
  assert.equal(taken?.id, job.id);
  const eventsThen = (await store.events(job.id, 0, 10_000)).length;
  assert.equal(await running, "lost");
  const now = await store.get(job.id);
  assert.equal(now?.state, "running", "the job is not finished by the worker that lost it");
  assert.equal(now?.worker, "w2");
  const after = await store.events(job.id, 0, 10_000);
  assert.ok(
    after.slice(eventsThen).every((e) => e.event.event === "progress" || e.event.event === "phase"),
    "no done or error event from the worker that lost the job",
  );
  await assert.rejects(access(output), "the interrupted conversion left no output");
});
