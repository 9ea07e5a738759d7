/**
 * A failing command, whatever failed: one line `chromogenic: MESSAGE` on stderr and, with --json, an `error`
 * event last on stdout with the stable code (docs/ERRORS.md), that same message and the status the process
 * exits with — for bad arguments (commander's and ours), a missing file, a corrupt or foreign image, a refused
 * reference, a failing job (which the event names), and a cancellation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { open, readdir, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { CLI, makeRaw, run, runCli, scratch } from "../helpers/tools.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";

const MiB = 2 ** 20;

/** Runs a command that must fail with `code`; returns its error event after checking it against the run. */
async function failsWith(code: string, exitCode: number, args: readonly string[], env = process.env) {
  const r = await runCli(args, env);
  const event = errorOf(r.stdout);
  assert.deepEqual([event.code, event.exitCode, r.code], [code, exitCode, exitCode], `${args.join(" ")}: ${r.stderr}`);
  assert.ok(
    r.stderr.includes(event.message),
    `stderr says what the event says: ${JSON.stringify(r.stderr)} / ${event.message}`,
  );
  return event;
}

test("usage errors, ours and commander's: EUSAGE, exit 2", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "in.raw");
  await makeRaw(raw, MiB);
  const ours = await failsWith("EUSAGE", 2, ["convert", "--json", "-O", "nosuch", raw, join(dir, "x")]);
  assert.match(ours.message, /unknown format "nosuch"/);
  assert.match((await runCli(["convert", "--json", "-O", "nosuch", raw, "x"], process.env)).stderr, /^chromogenic: /);
  const commander = await failsWith("EUSAGE", 2, ["info", "--json", "--no-such-flag", raw]);
  assert.match(commander.message, /unknown option '--no-such-flag'/);
  await failsWith("EUSAGE", 2, ["export", "--json", "--target", "nowhere", raw, join(dir, "x.ova")]);
  // Without --json: the line on stderr and the status, nothing on stdout.
  const plain = await runCli(["convert", "-O", "nosuch", raw, join(dir, "x")], process.env);
  assert.deepEqual([plain.code, plain.stdout], [2, ""]);
  assert.match(plain.stderr, /^chromogenic: unknown format "nosuch" \(known: [^\n]*\)\n$/);
});

test("a missing file, a corrupt image, a foreign format and a refused reference: their codes, exit 1", async (t) => {
  const dir = await scratch(t);
  const missing = await failsWith("ENOENT", 1, ["info", "--json", join(dir, "missing.img")]);
  // One sentence naming the user's file, not Node's "ENOENT: …, open '…'".
  assert.equal(missing.message, `${join(dir, "missing.img")}: no such file or directory`);
  const missingInput = await failsWith("ENOENT", 1, [
    "convert",
    "--json",
    "-O",
    "raw",
    join(dir, "gone.raw"),
    join(dir, "o"),
  ]);
  assert.equal(missingInput.message, `${join(dir, "gone.raw")}: no such file or directory`);

  const corrupt = join(dir, "corrupt.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", corrupt, "16M"]);
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(2n ** 62n); // an L1 table far beyond the file
  const h = await open(corrupt, "r+");
  await h.write(header, 0, 8, 40);
  await h.close();
  await failsWith("ECORRUPT", 1, ["convert", "--json", "-O", "raw", corrupt, join(dir, "out.raw")]);

  const gz = join(dir, "disk.raw.gz");
  await writeFile(gz, gzipSync(Buffer.alloc(MiB)));
  await failsWith("EUNREADABLEFORMAT", 1, ["info", "--json", gz]);

  await makeRaw(join(dir, "base.raw"), 4 * MiB);
  const overlay = join(dir, "overlay.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay]);
  const refused = await failsWith("EREFUSED", 1, ["convert", "--json", "-O", "raw", overlay, join(dir, "o.raw")]);
  assert.match(refused.message, /--allow-reference/);
  assert.deepEqual(
    (await readdir(dir)).sort(),
    ["base.raw", "corrupt.qcow2", "disk.raw.gz", "overlay.qcow2"],
    "no output left by a failure",
  );
});

test("a failing job: its error event names the job, and `jobs` keeps the code", async (t) => {
  const dir = await scratch(t);
  const env = { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, "state") };
  const data = Buffer.alloc(3 * MiB, 7);
  await writeFile(join(dir, "in.raw"), data);
  const store = `local:${join(dir, "s")}`;
  const up = await runCli(["image", "upload", "--cloud", store, join(dir, "in.raw"), "img"], env);
  assert.equal(up.code, 0, up.stderr);
  const id = up.stdout.trim();
  data[100] = 8; // the stored bytes no longer match the recorded SHA-256
  await writeFile(join(dir, "s", `${id}.img`), data);
  const out = join(dir, "x.raw");
  const event = await failsWith(
    "ESTORE",
    1,
    ["export", "--json", "--cloud", store, "--image", id, "--format", "raw", out],
    env,
  );
  assert.match(event.job ?? "", /^export-/);
  assert.match(event.message, new RegExp(`^job ${event.job}: .*no longer matches its recorded SHA-256`));
  const jobs = doneOf((await runCli(["jobs", "--json"], env)).stdout, "jobs").jobs as Record<string, unknown>[];
  assert.deepEqual(
    jobs.map((j) => [j.job, j.status, j.errorCode]),
    [[event.job, "failed", "ESTORE"]],
  );
});

test("Ctrl-C: the conversion stops, an EABORTED event ends its output, exit 130, nothing left", async (t) => {
  const dir = await scratch(t);
  const out = join(dir, "out.raw");
  // A raw disk from a pipe that trickles in: the conversion is under way as long as the test feeds it.
  const child = spawn(process.execPath, [
    CLI,
    "convert",
    "--json",
    "-f",
    "raw",
    "--input-option",
    "size=1G",
    "-O",
    "raw",
    "-",
    out,
  ]);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((r) => child.on("close", r));
  child.stdin.on("error", () => undefined);
  const feeder = setInterval(() => child.stdin.write(Buffer.alloc(256 * 1024, 1)), 10);
  try {
    for (let i = 0; i < 500 && !stdout.includes('"event":"progress"'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(stdout, /"event":"progress"/, `the conversion got under way: ${stderr}`);
    child.kill("SIGINT");
    const code = await closed;
    assert.equal(code, 130, stderr);
  } finally {
    clearInterval(feeder);
    child.stdin.destroy();
  }
  const event = errorOf(stdout);
  assert.deepEqual([event.code, event.exitCode], ["EABORTED", 130]);
  assert.deepEqual(await readdir(dir), [], "no output and no temporary");
});
