/**
 * Every command's --json output, checked against the one event schema (docs/events.schema.json) line by line
 * (test/helpers/event-lines.ts): JSON lines only, one `done` event last, `info`, `formats`, `clouds`, `jobs`
 * and the listings as one line each; the jobs' events name the job; a sparse disk's conversion reports data.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import type { ChromogenicEvent, ProgressEvent } from "../../src/util/events.js";
import { CLI, makeRaw, mixedRegions, run, runCli, scratch } from "../helpers/tools.js";
import { doneOf, eventLines } from "../helpers/event-lines.js";
import { debianRootFiles, isRoot, makeGuestDisk } from "../helpers/guest-images.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** `chromogenic ARGS` with its own state directory and no cloud configuration. */
function cliIn(dir: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OS_")));
  Object.assign(env, { CHROMOGENIC_STATE_DIR: join(dir, "state"), OS_CLIENT_CONFIG_FILE: join(dir, "no.yaml") });
  return async (...args: string[]) => {
    const r = await runCli(args, env);
    assert.equal(r.code, 0, `chromogenic ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
}

const progressOf = (events: ChromogenicEvent[]) => events.filter((e): e is ProgressEvent => e.event === "progress");

test("image commands: info, convert, export and the OVA's info and convert print schema events, one done last", async (t) => {
  const dir = await scratch(t);
  const cli = cliIn(dir);
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, 24 * MiB, mixedRegions(24 * MiB));

  const info = doneOf((await cli("info", "--json", raw)).stdout, "info");
  assert.equal(info.format, "raw");
  assert.equal((await cli("info", "--json", raw)).stdout.split("\n").length, 2, "one line");

  const converted = await cli("convert", "--json", "-O", "qcow2", raw, join(dir, "disk.qcow2"));
  const events = eventLines(converted.stdout);
  const progress = progressOf(events);
  assert.ok(progress.length > 0 && progress.every((e) => e.phase === "convert"));
  const done = doneOf(converted.stdout, "convert");
  assert.equal(progress.at(-1)!.bytes, done.bytesRead, "the last progress counts the data read");

  const ova = join(dir, "vm.ova");
  const exported = doneOf((await cli("export", "--json", "--target", "virtualbox", raw, ova)).stdout, "export");
  assert.equal(exported.target, "virtualbox");
  const ovaInfo = doneOf((await cli("info", "--json", ova)).stdout, "info");
  assert.ok(Array.isArray(ovaInfo.disks));
  const fromOva = await cli("convert", "--json", "-O", "raw", ova, join(dir, "back.raw"));
  assert.equal(doneOf(fromOva.stdout, "convert").outputFormat, "raw");
});

test("a sparse 20 GiB disk holding 48 MiB: progress counts the data, its total known, the disk walked to its end", async (t) => {
  const dir = await scratch(t);
  const cli = cliIn(dir);
  const sparse = join(dir, "sparse.raw");
  await makeRaw(sparse, 20 * GiB, [
    { offset: 64 * MiB, data: Buffer.alloc(16 * MiB, 1) },
    { offset: 15 * GiB, data: Buffer.alloc(32 * MiB, 2) },
  ]);
  const r = await cli("convert", "--json", "-O", "qcow2", sparse, join(dir, "sparse.qcow2"));
  const progress = progressOf(eventLines(r.stdout));
  const data = 48 * MiB;
  for (const e of progress) {
    assert.ok(e.bytes <= data, `bytes ${e.bytes} are data, not disk walked`);
    assert.ok(e.total === null || e.total === data, `total ${e.total}`);
    assert.ok(Math.abs(e.rate * e.elapsed - e.bytes) < 1, "rate = data bytes / elapsed");
    assert.equal(e.virtualSize, 20 * GiB);
    if (e.eta !== null && e.eta > 0)
      assert.ok(Math.abs(e.eta - (data - e.bytes) / e.rate) < 1e-6, "ETA from data left");
  }
  const last = progress.at(-1)!;
  assert.deepEqual([last.bytes, last.total, last.position, last.eta], [data, data, 20 * GiB, 0]);
  assert.equal(doneOf(r.stdout, "convert").bytesRead, data);
});

test("listings, the local store and the jobs: one done line each, job events naming the job", async (t) => {
  const dir = await scratch(t);
  const cli = cliIn(dir);
  const formats = await cli("formats", "--json");
  assert.equal(formats.stdout.split("\n").length, 2, "formats is one line");
  assert.ok((doneOf(formats.stdout, "formats").formats as unknown[]).length >= 6);
  assert.ok((doneOf((await cli("clouds", "--json")).stdout, "clouds").clouds as unknown[]).length >= 1);
  const operations = doneOf((await cli("clean", "--list-operations", "--json")).stdout, "clean").operations;
  assert.ok((operations as unknown[]).length > 10);

  const sample = join(dir, "sample.raw");
  await makeSampleImage(sample, 32 * MiB);
  const store = `local:${join(dir, "store")}`;
  const uploaded = doneOf(
    (await cli("image", "upload", "--json", "--cloud", store, sample, "s")).stdout,
    "image upload",
  );
  const listed = doneOf((await cli("image", "list", "--json", "--cloud", store)).stdout, "image list");
  assert.deepEqual(
    (listed.images as { id: string }[]).map((i) => i.id),
    [uploaded.id],
  );

  const migrate = await cli(
    "migrate",
    "--json",
    "--from",
    store,
    "--to",
    `local:${join(dir, "s2")}`,
    "--image",
    "s",
    "--format",
    "qcow2",
  );
  const events = eventLines(migrate.stdout);
  const done = doneOf(migrate.stdout, "migrate");
  assert.deepEqual(events[0], { event: "job", job: done.job });
  const work = events.filter((e) => e.event !== "job" && e.event !== "done");
  assert.ok(work.length > 0 && work.every((e) => "job" in e && e.job === done.job), "every event names the job");
  assert.ok(progressOf(events).some((e) => e.phase === "convert"));

  const exported = await cli(
    "export",
    "--json",
    "--cloud",
    store,
    "--image",
    "s",
    "--format",
    "vdi",
    join(dir, "s.vdi"),
  );
  const exportDone = doneOf(exported.stdout, "export");
  doneOf((await cli("resume", "--json", exportDone.job as string)).stdout, "resume");
  const jobs = doneOf((await cli("jobs", "--json")).stdout, "jobs").jobs as { status: string }[];
  assert.deepEqual(
    jobs.map((j) => j.status),
    ["done", "done"],
  );
});

test("demo --json: the jobs' events and the result", async (t) => {
  const dir = await scratch(t);
  const r = await cliIn(dir)("demo", "--json", "--no-clean", "--dir", join(dir, "demo"));
  const done = doneOf(r.stdout, "demo");
  assert.equal(done.verified, true);
  assert.ok(eventLines(r.stdout).some((e) => e.event === "phase"));
});

test(
  "inspect and clean --dry-run --json on a guest: attach and clean phases, a step per operation, the report",
  { skip: !(await isRoot()) ? "needs root (loop devices and mounts)" : false },
  async (t) => {
    const dir = await scratch(t);
    const cli = cliIn(dir);
    const disk = join(dir, "guest.raw");
    const root = { type: "ext4" as const, sizeMiB: 32, files: debianRootFiles("/dev/vda1 / ext4 defaults 0 1\n") };
    await makeGuestDisk(disk, "dos", [{ type: "83", sizeMiB: 32, fs: root }], dir);
    const inspected = doneOf((await cli("inspect", "--json", disk)).stdout, "inspect");
    assert.equal((inspected.distribution as { id: string }).id, "debian");
    const cleaned = await cli("clean", "--json", "--dry-run", disk);
    const events = eventLines(cleaned.stdout);
    assert.deepEqual(
      events.filter((e) => e.event === "phase").map((e) => `${e.phase} ${e.state}`),
      ["attach start", "attach end", "clean start", "clean end"],
    );
    const steps = events.filter((e) => e.event === "step");
    assert.ok(steps.length > 5);
    assert.deepEqual(
      steps.map((s) => s.index),
      steps.map((_, i) => i + 1),
    );
    assert.equal(doneOf(cleaned.stdout, "clean").dryRun, true);
  },
);

test("--json output is lines whatever the terminal: no progress bar or summary mixed in", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, 4 * MiB, mixedRegions(4 * MiB));
  const r = await run(process.execPath, [CLI, "convert", "--json", "-O", "vdi", raw, join(dir, "disk.vdi")]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "with --json, the summary is the done event, not a line on stderr");
  doneOf(r.stdout, "convert");
});
