/**
 * The steps the OpenStack workflow suites repeat: building `export`/`migrate` command lines, reading a --json
 * run's final `done` event, checking a written disk with qemu-img against a reference, opening an OVA's disk,
 * and catching a job mid-transfer (find its folder, wait for a condition, kill it, resume it).
 */
import assert from "node:assert/strict";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { OpenStackProvider } from "../../../src/providers/openstack/openstack-provider.js";
import { qemuCheck, qemuCompare, runOk } from "../../helpers/tools.js";
import { cli, imagesNamed, jsonLines, startCli, type CliProcess, type CliRun } from "./workflow-stack.js";

export type WorkflowEnv = { clouds: string; state: string };

/** A scratch folder for one suite (under CHROMOGENIC_TEST_TMP when set). */
export function scratchDir(prefix: string): Promise<string> {
  return mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), prefix));
}

/** Where an export or migrate reads from: a Glance image or a Nova server. */
export type WorkflowSource = { image: string } | { instance: string };

function sourceArgs(source: WorkflowSource): string[] {
  return "image" in source ? ["--image", source.image] : ["--instance", source.instance];
}

/** `migrate --from FROM --to TO --image|--instance X --name NAME --format FORMAT ...extra`. */
export function migrateArgs(
  o: { from: string; to: string; name: string; format: string } & WorkflowSource,
  ...extra: string[]
): string[] {
  return [
    "migrate",
    "--from",
    o.from,
    "--to",
    o.to,
    ...sourceArgs(o),
    "--name",
    o.name,
    "--format",
    o.format,
    ...extra,
  ];
}

/** `export --cloud CLOUD --image|--instance X --format FORMAT ...extra` (the output path goes last in extra). */
export function exportArgs(o: { cloud: string; format: string } & WorkflowSource, ...extra: string[]): string[] {
  return ["export", "--cloud", o.cloud, ...sourceArgs(o), "--format", o.format, ...extra];
}

/** Runs the CLI and fails the test (with its stderr) unless it exits 0. */
export async function cliOk(env: WorkflowEnv, args: readonly string[]): Promise<CliRun> {
  const r = await cli(env, ...args);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

/** The final event of a --json run, as the workflows write it. */
export interface DoneEvent {
  readonly job: string;
  readonly plan: { mode: string; sourceAccess: string; targetAccess: string; temporaryBytes: number };
  readonly image: { id: string; visibility: string };
  readonly snapshot?: { id: string; name: string };
  readonly snapshotDeleted?: boolean;
}

/** The last JSON line of a --json run, which must be the `done` event. */
export function doneEvent(stdout: string): DoneEvent {
  const last = jsonLines(stdout).at(-1)!;
  assert.equal(last.event, "done", stdout);
  return last as unknown as DoneEvent;
}

/** The phases a --json run started, in order. */
export function startedPhases(stdout: string): unknown[] {
  return jsonLines(stdout)
    .filter((e) => e.event === "phase" && e.state === "start")
    .map((e) => e.phase);
}

/** Downloads an image's bytes as stored into `file`; returns `file`. */
export async function downloadTo(provider: OpenStackProvider, id: string, file: string): Promise<string> {
  await pipeline(provider.downloadImage(id), createWriteStream(file));
  return file;
}

/** `file` passes `qemu-img check` and `qemu-img compare` finds the same guest-visible disk as `reference`. */
export async function assertSameDisk(reference: string, file: string): Promise<void> {
  assert.equal((await qemuCheck(file)).code, 0, `qemu-img check ${file}`);
  assert.equal((await qemuCompare(reference, file)).code, 0, `qemu-img compare ${reference} ${file}`);
}

/** Unpacks an OVA's disk (its second member, after the OVF) into `dir`; returns the disk's path. */
export async function ovaDisk(ova: string, dir: string): Promise<string> {
  const members = (await runOk("tar", ["tf", ova])).trim().split("\n");
  assert.match(members[1]!, /\.vmdk$/);
  await runOk("tar", ["xf", ova, "-C", dir, members[1]!]);
  return join(dir, members[1]!);
}

/** The job folders in the state directory now (to tell a new job's folder from older ones). */
export async function jobFolders(state: string): Promise<Set<string>> {
  return new Set(await readdir(join(state, "jobs")).catch(() => [] as string[]));
}

/** A CLI job started in the background, with the job folders that existed just before it started. */
export interface StartedJob extends CliProcess {
  readonly since: Set<string>;
}

/** Starts `chromogenic ARGS` in the background, first noting the job folders already there (see onlyJob). */
export async function startJob(env: WorkflowEnv, args: readonly string[]): Promise<StartedJob> {
  const since = await jobFolders(env.state);
  return { ...startCli(env, args), since };
}

/** The one job folder that is not in `since`, or "" while there is none (or more than one). */
export async function onlyJob(state: string, since: Set<string>): Promise<string> {
  const jobs = [...(await jobFolders(state))].filter((j) => !since.has(j));
  return jobs.length === 1 ? jobs[0]! : "";
}

/** What the tests read of a job's state.json. */
export interface JobStateFile {
  readonly status?: string;
  readonly destination?: { id?: string };
}

/** A job's state.json, or undefined while it is not (fully) written. */
export async function jobState(state: string, job: string): Promise<JobStateFile | undefined> {
  const text = await readFile(join(state, "jobs", job, "state.json"), "utf8").catch(() => "");
  try {
    return text ? (JSON.parse(text) as JobStateFile) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until `probe` is true (polling), failing after `ms` or as soon as the job's process has ended. */
export async function waitFor(
  what: string,
  run: CliProcess,
  probe: () => Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let exited: CliRun | undefined;
  void run.done.then((r) => (exited = r));
  while (!(await probe())) {
    if (exited) throw new Error(`the job ended before ${what}: ${exited.stderr}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Waits for the job `run` started to record its destination image, lets the upload go on for `settleMs`, then
 * SIGKILLs it and checks a half-made image was left in `destination`. Returns the job and that image's id.
 */
export async function killDuringUpload(
  env: WorkflowEnv,
  run: StartedJob,
  destination: OpenStackProvider,
  timing: { waitMs: number; settleMs: number },
): Promise<{ job: string; firstId: string }> {
  let job = "";
  let firstId = "";
  await waitFor(
    "the upload was under way",
    run,
    async () => {
      job ||= await onlyJob(env.state, run.since);
      firstId = (job && (await jobState(env.state, job))?.destination?.id) || "";
      return !!firstId;
    },
    timing.waitMs,
  );
  await sleep(timing.settleMs);
  run.child.kill("SIGKILL");
  assert.equal((await run.done).signal, "SIGKILL");
  const half = await destination.getImage(firstId);
  assert.ok(half && half.state !== "ready", `killed mid-upload: a half-made image was left (${half?.rawStatus})`);
  return { job, firstId };
}

/** `resume JOB --json`, which must succeed; returns the run and its done event. */
export async function resumeJob(env: WorkflowEnv, job: string): Promise<{ run: CliRun; result: DoneEvent }> {
  const run = await cliOk(env, ["resume", job, "--json"]);
  return { run, result: doneEvent(run.stdout) };
}

/** After a resumed upload: the half-made image is gone and `name` names exactly the finished image. */
export async function assertOneWholeCopy(
  destination: OpenStackProvider,
  name: string,
  id: string,
  firstId: string,
): Promise<void> {
  assert.notEqual(id, firstId);
  assert.equal(await destination.getImage(firstId), undefined, "the half-made image was deleted");
  assert.deepEqual(
    (await imagesNamed(destination, name)).map((c) => c.id),
    [id],
    "exactly one image of that name",
  );
}
