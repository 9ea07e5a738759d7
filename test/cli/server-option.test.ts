/**
 * The job commands with --server against a real service (service-stack.ts: the API, SQLite, workers): the job
 * submitted is the request a local run starts, its events and result print as a local run's (--json lines of
 * the schema, the same exit status on failure), a refused token is a clear error, Ctrl-C leaves the job running
 * and says how to follow or cancel it, and `jobs follow` / `jobs cancel` do that; `convert --server` converts a
 * file of the service as convert does here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { doneOf, errorOf, eventLines } from "../helpers/event-lines.js";
import { qemuCompare } from "../helpers/tools.js";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { startServiceStack, type ServiceStack } from "../helpers/service-stack.js";
import { startCli, type CliProcess, type CliRun } from "../workflows/helpers/workflow-stack.js";

async function tokenFile(stack: ServiceStack, token = stack.tokens.root): Promise<string> {
  const file = join(stack.dir, `token-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return file;
}

function env(stack: ServiceStack, state = "client-state") {
  return { clouds: join(stack.dir, "no-clouds.yaml"), state: join(stack.dir, state) };
}

/** The --json output of a running CLI up to its first progress event. */
async function firstProgress(running: CliProcess): Promise<string> {
  let out = "";
  running.child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 60_000;
  while (!/"event":"progress"/.test(out)) {
    assert.ok(Date.now() < deadline, `no progress event in 60 s: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

function run(stack: ServiceStack, args: readonly string[]): Promise<CliRun> {
  return startCli(env(stack), args).done;
}

test("migrate --server: the same request as a local run, its events and result as a local run's", async (t) => {
  const stack = await startServiceStack(t, { slots: 1 });
  await stack.addImage("small", 8);
  const args = ["migrate", "--from", stack.source, "--to", stack.destination, "--image", "small"];
  const more = ["--format", "qcow2", "--property", "os=debian", "--name", "copy", "--json"];
  const remote = await run(stack, [...args, ...more, "--server", stack.url, "--token-file", await tokenFile(stack)]);
  assert.equal(remote.code, 0, remote.stderr);
  const events = eventLines(remote.stdout);
  const first = events[0]!;
  assert.equal(first.event, "job", "the service's job id comes first, as a local run's job id does");
  const id = (first as { job: string }).job;
  assert.equal(events.filter((e) => e.event === "job").length, 1, "one job id: the one to follow or cancel");
  assert.ok(
    events.some((e) => e.event === "progress"),
    "progress events are passed on",
  );
  assert.ok(
    events.some((e) => e.event === "phase" && e.state === "start"),
    "phases too",
  );
  const done = doneOf(remote.stdout, "migrate") as unknown as { image: { name: string; diskFormat: string } };
  assert.equal(done.image.name, "copy");
  assert.equal(done.image.diskFormat, "qcow2");

  // The same command run here saves the request it started: the service was sent exactly that.
  const local = await run(stack, [...args, ...more]);
  assert.equal(local.code, 0, local.stderr);
  const localJob = doneOf(local.stdout, "migrate") as unknown as { job: string };
  const saved = JSON.parse(await readFile(join(env(stack).state, "jobs", localJob.job, "state.json"), "utf8")) as {
    request: unknown;
  };
  assert.deepEqual((await stack.store.get(id))?.spec, saved.request);

  // Without --json: the summary a local run prints, on stdout.
  const human = await run(stack, [
    ...args,
    "--format",
    "raw",
    "--name",
    "raw copy",
    "--server",
    stack.url,
    "--token-file",
    await tokenFile(stack),
  ]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^job \S+: migrate done in [\d.]+ s/m);
  assert.match(human.stdout, /image \S+ "raw copy" in local:/);
  assert.match(human.stderr, /chromogenic: job \S+/, "the job's id is told at once");
});

test("a job that fails on the service fails here the same way; refused tokens and requests are clear", async (t) => {
  const stack = await startServiceStack(t, { slots: 1 });
  const args = ["migrate", "--from", stack.source, "--to", stack.destination, "--image", "absent", "--json"];
  const local = await run(stack, args);
  const remote = await run(stack, [...args, "--server", stack.url, "--token-file", await tokenFile(stack)]);
  assert.notEqual(local.code, 0);
  assert.equal(remote.code, local.code, remote.stderr);
  assert.equal(errorOf(remote.stdout).code, errorOf(local.stdout).code);
  assert.match(remote.stderr, /absent/);

  const wrong = await run(stack, [
    ...args,
    "--server",
    stack.url,
    "--token-file",
    await tokenFile(stack, "not-a-token"),
  ]);
  assert.equal(wrong.code, 1);
  assert.equal(errorOf(wrong.stdout).code, "EAUTH");
  assert.match(wrong.stderr, /401/);
  assert.ok(!wrong.stderr.includes("not-a-token"), "the token is never printed");

  // bob may only convert: the service refuses the migrate before anything starts.
  const bob = await run(stack, [
    ...args,
    "--server",
    stack.url,
    "--token-file",
    await tokenFile(stack, stack.tokens.bob),
  ]);
  assert.equal(bob.code, 1, bob.stderr);
  assert.equal(errorOf(bob.stdout).code, "EAUTH");
  assert.match(bob.stderr, /403 \(token "bob" may not run migrate jobs\)/);
  assert.equal((await stack.store.list({ limit: 10 })).jobs.length, 1, "only the first job was stored");

  const unreachable = await run(stack, [
    ...args,
    "--server",
    "http://127.0.0.1:9",
    "--token-file",
    await tokenFile(stack),
  ]);
  assert.equal(errorOf(unreachable.stdout).code, "ETRANSFER");
  assert.match(unreachable.stderr, /cannot reach the service/);

  const noServer = await run(stack, [...args, "--token-file", await tokenFile(stack)]);
  assert.equal(noServer.code, 2);
  assert.match(noServer.stderr, /--token-file needs --server/);
});

test("Ctrl-C stops following, not the job; jobs follow picks it up and jobs cancel stops it", async (t) => {
  const stack = await startServiceStack(t, { slots: 2 });
  await Promise.all([stack.addImage("big", 192), stack.addImage("other", 192)]);
  const token = await tokenFile(stack);
  const migrate = (image: string) =>
    startCli(env(stack), [
      "migrate",
      "--from",
      stack.source,
      "--to",
      stack.destination,
      "--image",
      image,
      "--format",
      "vmdk",
      "--json",
      "--server",
      stack.url,
      "--token-file",
      token,
    ]);
  const following = migrate("big");
  await firstProgress(following);
  following.child.kill("SIGINT");
  const detached = await following.done;
  assert.equal(detached.code, 130, detached.stderr);
  const error = errorOf(detached.stdout);
  assert.equal(error.code, "EABORTED");
  const id = error.job!;
  assert.match(detached.stderr, new RegExp(`jobs follow ${id} --server ${stack.url}`));
  assert.match(detached.stderr, new RegExp(`jobs cancel ${id} --server ${stack.url}`));
  assert.equal((await stack.store.get(id))?.state, "running", "the job goes on in the service");

  const followed = await run(stack, ["jobs", "follow", id, "--json", "--server", stack.url, "--token-file", token]);
  assert.equal(followed.code, 0, followed.stderr);
  const events = eventLines(followed.stdout);
  assert.ok(events.filter((e) => e.event === "progress").length > 1, "its events from the first");
  assert.equal(doneOf(followed.stdout, "migrate").job !== undefined, true);

  // Cancel one while it runs: the service stops it, and following it ends as a cancelled run does.
  const other = migrate("other");
  const otherOut = await firstProgress(other);
  const otherId = (JSON.parse(otherOut.split("\n")[0]!) as { job: string }).job;
  const cancel = await run(stack, ["jobs", "cancel", otherId, "--json", "--server", stack.url, "--token-file", token]);
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.equal(doneOf(cancel.stdout, "jobs cancel").job, otherId);
  const ended = await other.done;
  assert.equal(ended.code, 130, ended.stderr);
  assert.equal(errorOf(ended.stdout).code, "EABORTED");
  assert.equal((await stack.store.get(otherId))?.state, "cancelled");
  assert.deepEqual(await stack.destinationImages(), ["big"], "the cancelled job left nothing behind");
});

test("convert --server: a file of the service converted as convert does here; local-only options refused", async (t) => {
  const stack = await startServiceStack(t, { slots: 1 });
  const input = join(stack.inDir, "disk.raw");
  const output = join(stack.outDir, "disk.qcow2");
  await makeSampleImage(input, 32 * 2 ** 20);
  const token = await tokenFile(stack);
  const converted = await run(stack, [
    "convert",
    "-O",
    "qcow2",
    "-c",
    input,
    output,
    "--json",
    "--server",
    stack.url,
    "--token-file",
    token,
  ]);
  assert.equal(converted.code, 0, converted.stderr);
  const done = doneOf(converted.stdout, "convert");
  assert.equal(done.outputFormat, "qcow2");
  assert.equal((await qemuCompare(input, output)).code, 0, "the same disk");
  const id = (eventLines(converted.stdout)[0] as { job: string }).job;
  assert.deepEqual((await stack.store.get(id))?.spec, {
    kind: "convert",
    input,
    output,
    format: "qcow2",
    options: { compression_type: "zlib" },
  });

  const human = await run(stack, [
    "convert",
    "-O",
    "raw",
    output,
    join(stack.outDir, "back.raw"),
    "--server",
    stack.url,
    "--token-file",
    token,
  ]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(
    human.stderr,
    /qcow2 → raw: 32.0 MiB disk/,
    `the summary on stderr, as a local convert's: ${human.stderr}`,
  );
  assert.equal(human.stdout, "");

  const refused = await run(stack, [
    "convert",
    "-U",
    "-O",
    "raw",
    input,
    join(stack.outDir, "u.raw"),
    "--server",
    stack.url,
  ]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /-U: not with --server/);
  const outside = await run(stack, [
    "convert",
    "-O",
    "raw",
    "/etc/hostname",
    join(stack.outDir, "h.raw"),
    "--json",
    "--server",
    stack.url,
    "--token-file",
    token,
  ]);
  assert.equal(outside.code, 2, outside.stderr);
  assert.equal(errorOf(outside.stdout).code, "EUSAGE");
  assert.match(outside.stderr, /\/etc\/hostname/);
});
