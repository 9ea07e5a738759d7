/**
 * Every signal ends the CLI, whatever its reads are doing. `convert - OUT` reads a pipe whose writer never
 * writes (a stalled download, a hung device behind it): SIGTERM must end it promptly, with the temporary
 * output removed. And when a libuv threadpool thread is stuck for good (a read of a hung device or NFS share,
 * which nothing interrupts and Node's exit waits for), the CLI must still end within its bounded undo time,
 * by the signal, leaving nothing behind.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI, scratch } from "../helpers/tools.js";
import { outputOpenIn } from "../helpers/process-files.js";

/** What a convert or export may take to undo its work before the CLI stops anyway (run-job.ts). */
const FILE_JOB_UNDO_SECONDS = 5;
const STUCK_THREAD_CLI = "dist/test/helpers/stuck-thread-cli.js";

/**
 * `convert - DIR/out` with a standard input that stays open and silent, started and waited for until its
 * temporary output exists (the job is then reading); `stuck`: with a threadpool thread stuck on a FIFO
 * (DIR/never-written) for good. The CLI is killed after the test, whatever happened.
 */
async function convertFromSilentPipe(t: TestContext, stuck: boolean) {
  const dir = await scratch(t);
  const fifo = join(dir, "never-written");
  if (stuck) execFileSync("mkfifo", [fifo]);
  const args = ["convert", "-q", "-f", "raw", "--input-option", "size=64M", "-O", "qcow2", "-", join(dir, "out")];
  const child = spawn(process.execPath, stuck ? [STUCK_THREAD_CLI, fifo, ...args] : [CLI, ...args]);
  t.after(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const before = stuck ? ["never-written"] : [];
  await outputOpenIn(child.pid!, dir, before);
  return {
    child,
    /** What is left in the folder: what was there before the CLI ran, if it left nothing behind. */
    left: () => readdir(dir),
    before,
    /** How the CLI ended and the seconds it took from now; failing if it did not end within `limit` s. */
    async ended(limit: number) {
      const started = Date.now();
      const timer = setTimeout(() => child.kill("SIGKILL"), limit * 1000);
      const result = await exited;
      clearTimeout(timer);
      assert.notEqual(result.signal, "SIGKILL", `the CLI did not end within ${limit} s of the signal: ${stderr}`);
      return { ...result, stderr, seconds: (Date.now() - started) / 1000 };
    },
  };
}

test("SIGTERM ends a convert stuck reading a silent pipe at once, with its temporary output removed", async (t) => {
  const cli = await convertFromSilentPipe(t, false);
  cli.child.kill("SIGTERM");
  const r = await cli.ended(20);
  assert.ok(r.seconds < 3, `took ${r.seconds} s`);
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /SIGTERM received, cancelling/);
  assert.match(r.stderr, /chromogenic: operation cancelled\n$/);
  assert.deepEqual(await cli.left(), cli.before, "no output and no temporary file");
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`${signal} ends the CLI within its undo time while a threadpool thread is stuck, leaving nothing`, async (t) => {
    const cli = await convertFromSilentPipe(t, true);
    cli.child.kill(signal);
    const r = await cli.ended(30);
    assert.ok(r.seconds < FILE_JOB_UNDO_SECONDS + 3, `took ${r.seconds} s`);
    assert.ok(r.signal === signal, `ended by ${r.signal ?? `exit code ${r.code}`}, not ${signal}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`still running ${FILE_JOB_UNDO_SECONDS} s after ${signal}, stopping now`));
    assert.deepEqual(await cli.left(), cli.before, "no output and no temporary file");
  });
}

test("a second SIGTERM ends the CLI at once while a threadpool thread is stuck", async (t) => {
  const cli = await convertFromSilentPipe(t, true);
  cli.child.kill("SIGTERM");
  await sleep(500);
  cli.child.kill("SIGTERM");
  const r = await cli.ended(30);
  assert.ok(r.seconds < 3, `took ${r.seconds} s`);
  assert.equal(r.signal, "SIGTERM", r.stderr);
  assert.deepEqual(await cli.left(), cli.before, "no output and no temporary file");
});
