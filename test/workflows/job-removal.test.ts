/**
 * `jobs rm` and `jobs prune`: a job is forgotten with its record, temporary files and work folder; never while
 * its process runs; and not while it points at something it left in a cloud, unless forced (then the message
 * names what stays there).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { scratch } from "../helpers/tools.js";
import { cli, jsonLines } from "./helpers/workflow-stack.js";

test("prune forgets succeeded jobs, --failed the failed ones; rm refuses running jobs and cloud leftovers", async (t) => {
  const dir = await scratch(t);
  const env = { clouds: join(dir, "none.yaml"), state: join(dir, "state") };
  const sample = join(dir, "sample.raw");
  await makeSampleImage(sample, 4 * 2 ** 20);
  assert.equal((await cli(env, "image", "upload", "--cloud", `local:${dir}/s1`, sample, "one")).code, 0);
  const ok = await cli(
    env,
    "migrate",
    "--from",
    `local:${dir}/s1`,
    "--to",
    `local:${dir}/s2`,
    "--image",
    "one",
    "--json",
  );
  assert.equal(ok.code, 0, ok.stderr);
  const done = (jsonLines(ok.stdout).at(-1) as { job: string }).job;
  // A second image whose stored data is then damaged: its migration starts, then fails verification.
  assert.equal((await cli(env, "image", "upload", "--cloud", `local:${dir}/s1`, sample, "two")).code, 0);
  const stored = (await readdir(join(dir, "s1"))).filter((f) => f.endsWith(".img"));
  for (const f of stored) {
    const meta = JSON.parse(await readFile(join(dir, "s1", f.replace(/\.img$/, ".json")), "utf8")) as { name: string };
    if (meta.name === "two") await truncate(join(dir, "s1", f), 2 ** 20);
  }
  const bad = await cli(env, "migrate", "--from", `local:${dir}/s1`, "--to", `local:${dir}/s2`, "--image", "two");
  assert.equal(bad.code, 1, bad.stderr);
  const jobsDir = join(env.state, "jobs");
  const failed = (await readdir(jobsDir)).find((j) => j !== done)!;

  const pruned = await cli(env, "jobs", "prune", "--json");
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.deepEqual(await readdir(jobsDir), [failed]);
  assert.match(pruned.stdout, new RegExp(`"job":"${failed}","reason":"failed \\(--failed removes it\\)"`));

  // The failed job, made to look as if it had kept a snapshot: rm refuses, names it, --force forgets it.
  const statePath = join(jobsDir, failed, "state.json");
  const state = JSON.parse(await readFile(statePath, "utf8")) as Record<string, unknown>;
  await writeFile(statePath, JSON.stringify({ ...state, snapshot: { name: "chromo-snap", id: "snap-1" } }));
  const pruneFailed = await cli(env, "jobs", "prune", "--failed");
  assert.equal(pruneFailed.code, 0, pruneFailed.stderr);
  assert.match(pruneFailed.stdout, /kept .*: points at snapshot "chromo-snap" \(snap-1\) in local:/);
  const refused = await cli(env, "jobs", "rm", failed);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /still points at snapshot "chromo-snap".*--force/);
  const forced = await cli(env, "jobs", "rm", "--force", failed);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /left in the cloud: snapshot "chromo-snap"/);
  assert.deepEqual(await readdir(jobsDir), []);
});

test("jobs rm refuses a job whose process is running, and an id that is not a job", async (t) => {
  const dir = await scratch(t);
  const env = { clouds: join(dir, "none.yaml"), state: join(dir, "state") };
  const id = "migrate-20261207000000-abcdef";
  const { mkdir } = await import("node:fs/promises");
  await mkdir(join(env.state, "jobs", id), { recursive: true });
  const state = {
    version: 1,
    id,
    createdAt: "2026-12-07T00:00:00.000Z",
    updatedAt: "2026-12-07T00:00:00.000Z",
    pid: process.pid,
    request: { kind: "migrate", source: { cloud: "local" }, destination: { kind: "cloud", cloud: "local" } },
    status: "running",
    phase: "download",
    files: {},
    done: [],
    bytes: { download: 0, upload: 0 },
    checksums: {},
  };
  await writeFile(join(env.state, "jobs", id, "state.json"), JSON.stringify(state));
  const running = await cli(env, "jobs", "rm", id);
  assert.equal(running.code, 2);
  assert.match(running.stderr, new RegExp(`job ${id} is running \\(process ${process.pid}\\)`));
  const missing = await cli(env, "jobs", "rm", "migrate-20261207000000-000000");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no job migrate-20261207000000-000000/);
});
