/**
 * Export and migrate of images against the real test stack (Keystone, Glance RegionOne :9292 and RegionTwo
 * :9293), through the CLI as users run it, with a clouds.yaml naming user A and user B in both regions:
 * exports to OVA/qcow2 checked by qemu-img against the Glance image, migrations across regions and projects
 * (hashes equal when formats match, qemu-img compare when converted), the --json event schema, the preflight
 * refusing a too-small work disk before any transfer, and SIGKILL during download and during upload followed
 * by `resume`.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { OpenStackProvider } from "../../src/providers/openstack/openstack-provider.js";
import { requireStack, stackCloud } from "../helpers/openstack-stack.js";
import { qemuCompare, runOk } from "../helpers/tools.js";
import {
  cli,
  deleteImagesNamed,
  imagesNamed,
  jsonLines,
  sampleInGlance,
  startThrottleProxy,
  writeCloudsYaml,
  type SampleInGlance,
  type ThrottleProxy,
} from "./helpers/workflow-stack.js";
import {
  assertOneWholeCopy,
  assertSameDisk,
  cliOk,
  doneEvent as done,
  downloadTo as download,
  exportArgs,
  jobState,
  killDuringUpload,
  migrateArgs,
  onlyJob,
  ovaDisk,
  resumeJob,
  scratchDir,
  startJob,
  startedPhases,
  waitFor,
  type DoneEvent,
  type WorkflowEnv,
} from "./helpers/workflow-steps.js";

const MiB = 2 ** 20;
const tag = randomUUID().slice(0, 8);
let dir: string;
let env: WorkflowEnv;
let sample: SampleInGlance;
let rawSample: SampleInGlance;
let vdiSample: SampleInGlance;
let slowSource: ThrottleProxy;
let slowDestination: ThrottleProxy;
const a1 = new OpenStackProvider(stackCloud("user-a", "RegionOne"));
const a2 = new OpenStackProvider(stackCloud("user-a", "RegionTwo"));
const b1 = new OpenStackProvider(stackCloud("user-b", "RegionOne"));
const made: [OpenStackProvider, string][] = [];

before(async () => {
  await requireStack();
  dir = await scratchDir("chromo-wf-");
  slowSource = await startThrottleProxy({ host: "127.0.0.1", port: 9292 }, 1 * MiB);
  slowDestination = await startThrottleProxy({ host: "127.0.0.1", port: 9293 }, 1 * MiB);
  env = {
    state: join(dir, "state"),
    clouds: await writeCloudsYaml(dir, {
      a1: { user: "user-a", region: "RegionOne" },
      a2: { user: "user-a", region: "RegionTwo" },
      b1: { user: "user-b", region: "RegionOne" },
      a1slow: { user: "user-a", region: "RegionOne", imageEndpoint: slowSource.url },
      a2slow: { user: "user-a", region: "RegionTwo", imageEndpoint: slowDestination.url },
    }),
  };
  sample = await sampleInGlance(dir, `chromo-wf-${tag}`);
  rawSample = await sampleInGlance(dir, `chromo-wf-raw-${tag}`, "raw");
  // qcow2, raw and VMDK sources are read in place with Range requests; a VDI is downloaded first.
  vdiSample = await sampleInGlance(dir, `chromo-wf-vdi-${tag}`, "vdi");
});

after(async () => {
  await slowSource?.close();
  await slowDestination?.close();
  for (const [p, id] of made) await p.deleteImage(id).catch(() => undefined);
  if (sample) await a1.deleteImage(sample.image.id).catch(() => undefined);
  if (rawSample) await a1.deleteImage(rawSample.image.id).catch(() => undefined);
  if (vdiSample) await a1.deleteImage(vdiSample.image.id).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("export --image from Glance to OVA and qcow2 (streamed and Range-read sources): qemu-img check and compare", async () => {
  const glanceCopy = await download(a1, sample.image.id, join(dir, "glance-copy.qcow2"));
  // qcow2 → qcow2: the bytes pass straight through.
  const q = await cliOk(
    env,
    exportArgs({ cloud: "a1", image: sample.image.id, format: "qcow2" }, "--json", join(dir, "out.qcow2")),
  );
  assert.equal(done(q.stdout).plan.mode, "passthrough");
  await assertSameDisk(glanceCopy, join(dir, "out.qcow2"));
  // qcow2 → OVA (vmware): the disk inside is a streamOptimized VMDK holding the same disk.
  await cliOk(
    env,
    exportArgs(
      { cloud: "a1", image: sample.image.name, format: "ova" },
      "--target",
      "vmware",
      "--json",
      join(dir, "out.ova"),
    ),
  );
  await assertSameDisk(glanceCopy, await ovaDisk(join(dir, "out.ova"), dir));
  // raw in Glance → qcow2: read in place with HTTP Range, no local copy of the source.
  const r = await cliOk(
    env,
    exportArgs({ cloud: "a1", image: rawSample.image.id, format: "qcow2" }, "--json", join(dir, "from-raw.qcow2")),
  );
  const result = done(r.stdout);
  assert.equal(result.plan.sourceAccess, "random-access");
  assert.equal(result.plan.temporaryBytes, 0);
  await assertSameDisk(rawSample.raw, join(dir, "from-raw.qcow2"));
});

test("migrate RegionOne → RegionTwo (same format: hashes equal) and project A → project B (converted: compare); --json schema", async () => {
  const name = `chromo-wf-r2-${tag}`;
  const m = await cliOk(
    env,
    migrateArgs(
      { from: "a1", to: "a2", image: sample.image.id, name, format: "qcow2" },
      "--property",
      "purpose=wf-test",
      "--json",
    ),
  );
  const r = done(m.stdout);
  made.push([a2, r.image.id]);
  assert.equal(r.plan.mode, "passthrough");
  const copy = (await a2.getImage(r.image.id))!;
  assert.equal(copy.hash?.value, sample.image.hash?.value, "sha512 of the copy equals the source's");
  assert.equal(copy.visibility, "private");
  assert.equal(copy.properties.purpose, "wf-test");
  assert.equal((await imagesNamed(a2, name)).length, 1);

  const projectA = (await a1.session.scope()).projectId!;
  // To project B, in B's preferred format unless asked: here raw, converted from qcow2 as it streams up.
  const nameB = `chromo-wf-b-${tag}`;
  const b = await cliOk(
    env,
    migrateArgs(
      { from: "a1", to: "b1", image: sample.image.id, name: nameB, format: "raw" },
      "--share",
      projectA,
      "--json",
    ),
  );
  const rb = done(b.stdout);
  made.push([b1, rb.image.id]);
  assert.equal(rb.plan.mode, "convert");
  assert.equal(rb.plan.targetAccess, "stream");
  const inB = await download(b1, rb.image.id, join(dir, "in-b.raw"));
  assert.equal((await qemuCompare(sample.raw, inB)).code, 0);
  // Shared back with project A as a member: visible to A only once A accepts it.
  assert.equal((await b1.getImage(rb.image.id))!.visibility, "shared");
  assert.deepEqual(
    (await b1.glance.listMembers(rb.image.id)).map((m) => m.member_id),
    [projectA],
  );
  assert.equal((await imagesNamed(a1, nameB)).length, 0, "not in A's list until A accepts it");

  // One schema for every event of both runs (jsonLines checks each line against it), every event naming the job.
  const events = [...jsonLines(m.stdout), ...jsonLines(b.stdout)];
  for (const e of events) assert.equal(typeof e.job, "string", JSON.stringify(e));
  const seen = new Set(
    jsonLines(b.stdout)
      .filter((e) => e.event === "progress")
      .map((e) => e.phase),
  );
  // qcow2 → raw reads the source in place (Range requests): no download phase, no temporary file.
  assert.equal(done(b.stdout).plan.sourceAccess, "random-access");
  for (const p of ["convert", "upload"]) assert.ok(seen.has(p), `progress events of ${p}`);
  assert.ok(!seen.has("download"), "no download of a source read in place");
  const lastUpload = jsonLines(b.stdout)
    .filter((e) => e.event === "progress" && e.phase === "upload")
    .at(-1)!;
  assert.equal(lastUpload.bytes, 256 * MiB);
});

test("migrate --server-side: RegionTwo's Glance copies the image itself (glance-download), same hash", async () => {
  const name = `chromo-wf-ss-${tag}`;
  const m = await cliOk(
    env,
    migrateArgs({ from: "a1", to: "a2", image: sample.image.id, name, format: "qcow2" }, "--server-side", "--json"),
  );
  const r = done(m.stdout);
  made.push([a2, r.image.id]);
  assert.deepEqual(startedPhases(m.stdout), ["import", "verify"], "no download or upload through this machine");
  const copy = (await a2.getImage(r.image.id))!;
  assert.equal(copy.hash?.value, sample.image.hash?.value);
  assert.equal(copy.visibility, "private");
  assert.equal(copy.properties.chromogenic_job, (jsonLines(m.stdout)[0] as { job: string }).job);
});

test("preflight: a work disk too small for the plan is refused before any transfer, naming both numbers", async (t) => {
  const small = join(dir, "small-work");
  await mkdir(small);
  await runOk("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]);
  t.after(() => runOk("umount", [small]));
  const name = `chromo-wf-preflight-${tag}`;
  const r = await cli(
    env,
    ...migrateArgs({ from: "a1", to: "a2", image: sample.image.id, name, format: "vdi" }, "--work-dir", small),
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /not enough space in .*small-work.*: this job needs [\d.]+ MiB \(\d+ bytes\) there .* but only [\d.]+ (KiB|MiB) \(\d+ bytes\) are free/,
  );
  const smallJobs = await readdir(small);
  for (const j of smallJobs) assert.deepEqual(await readdir(join(small, j)), [], "nothing was downloaded");
  assert.equal((await imagesNamed(a2, name)).length, 0, "nothing was created in the destination");
});

/** Size of the job's partial download so far (0 while there is none). */
async function downloadedBytes(job: string): Promise<number> {
  return (await stat(join(env.state, "jobs", job, "source.vdi")).catch(() => undefined))?.size ?? 0;
}

test("SIGKILL during the download, then resume: continues with Range, one image in the destination, same disk", async () => {
  const name = `chromo-wf-kill-dl-${tag}`;
  slowSource.rate = 1 * MiB;
  const run = await startJob(
    env,
    // --download-first: every format is read in place otherwise; this is the resumable download path.
    migrateArgs(
      { from: "a1slow", to: "a2", image: vdiSample.image.id, name, format: "raw" },
      "--download-first",
      "--json",
    ),
  );
  let job = "";
  await waitFor("the download was under way", run, async () => {
    job ||= await onlyJob(env.state, run.since);
    return !!job && (await downloadedBytes(job)) > 1 * MiB;
  });
  run.child.kill("SIGKILL");
  const killed = await run.done;
  assert.equal(killed.signal, "SIGKILL");
  const partial = (await stat(join(env.state, "jobs", job, "source.vdi"))).size;
  assert.ok(partial > 0 && partial < vdiSample.image.sizeBytes!, `killed mid-download (${partial} bytes)`);
  assert.equal((await imagesNamed(a2, name)).length, 0);

  slowSource.rate = 200 * MiB;
  const { run: resumed, result: r } = await resumeJob(env, job);
  const events = jsonLines(resumed.stdout);
  const start = events.find((e) => e.event === "phase" && e.phase === "download" && e.state === "start")!;
  assert.match(String(start.detail), /resuming at byte \d+/);
  assert.ok(Number(/byte (\d+)/.exec(String(start.detail))![1]) >= partial - 64 * 1024, "resumed, not restarted");
  made.push([a2, r.image.id]);
  const copies = await imagesNamed(a2, name);
  assert.equal(copies.length, 1, "exactly one image of that name");
  const got = await download(a2, r.image.id, join(dir, "kill-dl.raw"));
  assert.equal((await qemuCompare(vdiSample.raw, got)).code, 0);
  assert.equal((await jobState(env.state, job))?.status, "done");
  assert.deepEqual(
    (await readdir(join(env.state, "jobs", job))).filter((f) => f !== "state.json"),
    [],
    "temporary files removed",
  );
});

test("SIGKILL during the upload, then resume: the half-made image is deleted, one whole copy remains, hashes equal", async () => {
  const name = `chromo-wf-kill-up-${tag}`;
  slowDestination.rate = 1 * MiB;
  const run = await startJob(
    env,
    migrateArgs({ from: "a1", to: "a2slow", image: sample.image.id, name, format: "qcow2" }, "--json"),
  );
  const { job, firstId } = await killDuringUpload(env, run, a2, { waitMs: 60_000, settleMs: 1500 });

  slowDestination.rate = 200 * MiB;
  const { run: resumed, result: r } = await resumeJob(env, job);
  made.push([a2, r.image.id]);
  await assertOneWholeCopy(a2, name, r.image.id, firstId);
  assert.equal((await a2.getImage(r.image.id))?.hash?.value, sample.image.hash?.value);
  assert.ok(jsonLines(resumed.stdout).some((e) => e.event === "message" && /unfinished upload/.test(String(e.text))));
});

test("SIGTERM mid-transfer leaves an interrupted, resumable job (nothing removed); resume finishes it", async () => {
  const name = `chromo-wf-term-${tag}`;
  slowSource.rate = 1 * MiB;
  const run = await startJob(
    env,
    migrateArgs({ from: "a1slow", to: "a2", image: vdiSample.image.id, name, format: "raw" }, "--download-first"),
  );
  let job = "";
  await waitFor("the download was under way", run, async () => {
    job ||= await onlyJob(env.state, run.since);
    return !!job && (await downloadedBytes(job)) > 512 * 1024;
  });
  run.child.kill("SIGTERM");
  const stopped = await run.done;
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.ok(
    stopped.stderr.includes(`job ${job} interrupted; \`chromogenic resume ${job}\` continues it`),
    stopped.stderr,
  );
  assert.equal((await jobState(env.state, job))?.status, "interrupted");
  assert.ok((await stat(join(env.state, "jobs", job, "source.vdi"))).size > 0, "the partial download is kept");
  const list = await cli(env, "jobs");
  assert.match(list.stdout, new RegExp(`${job}\\s+interrupted`));
  slowSource.rate = 200 * MiB;
  made.push([a2, (await resumeJob(env, job)).result.image.id]);
  assert.equal((await imagesNamed(a2, name)).length, 1);
});

test("migrate --clean: the guest is cleaned on one sparse raw working copy on its way to RegionTwo", async () => {
  const name = `chromo-wf-clean-${tag}`;
  const m = await cliOk(
    env,
    migrateArgs({ from: "a1", to: "a2", image: sample.image.id, name, format: "raw" }, "--clean", "--json"),
  );
  const r = done(m.stdout) as DoneEvent & { cleaning: { changes: number } };
  made.push([a2, r.image.id]);
  assert.equal(r.plan.mode, "clean");
  assert.ok(r.cleaning.changes > 0);
  // The working copy is converted straight from Glance (Range requests), cleaned, converted out.
  assert.deepEqual(startedPhases(m.stdout), ["convert", "clean", "convert", "upload", "verify"]);
  const got = await download(a2, r.image.id, join(dir, "cleaned.raw"));
  const partition = `${got}?offset=${MiB}`;
  assert.equal((await runOk("debugfs", ["-R", "cat /etc/hostname", partition])).trim(), "sample-guest");
  assert.equal(await runOk("debugfs", ["-R", "cat /etc/machine-id", partition]), "");
  assert.notEqual((await qemuCompare(sample.raw, got)).code, 0, "the copy differs from the uncleaned source");
});

after(async () => {
  for (const n of ["preflight", "kill-dl", "kill-up", "r2", "term", "clean", "ss"])
    await deleteImagesNamed(a2, `chromo-wf-${n}-${tag}`);
});
