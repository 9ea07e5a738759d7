/**
 * A job resumed where its temporary files are not — on another host (a service worker taking over from one that
 * died), or after they were removed — redoes the steps that made them, and the destination still ends with one
 * image; a state whose process is alive is resumed only by a caller holding the job by a lease of its own.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { WorkEvent } from "../../src/util/events.js";
import { JobInterruptedError, resumeJob, startJob } from "../../src/workflows/image-job.js";
import { adoptJob, loadJob, type JobRequest, type JobState } from "../../src/workflows/job-state.js";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { qemuCompare, scratch } from "../helpers/tools.js";
import { storeDisk, storeFiles } from "../service/helpers/worker-fixtures.js";

const MiB = 2 ** 20;
const stateRoot = mkdtempSync(join(tmpdir(), "chromogenic-missing-files-"));
after(() => rmSync(stateRoot, { recursive: true, force: true }));

/** A local → local migrate into qcow2 (converted into a temporary file, then uploaded), stopped once converted. */
async function interruptedAfterConversion(dir: string): Promise<{ state: JobState; source: string; to: string }> {
  const source = join(dir, "sample.raw");
  await makeSampleImage(source, 64 * MiB);
  const from = join(dir, "a");
  const to = join(dir, "b");
  const image = await storeDisk(from, source, "sample");
  const request: JobRequest = {
    kind: "migrate",
    source: { cloud: `local:${from}`, image },
    destination: { kind: "cloud", cloud: `local:${to}`, format: "qcow2" },
  };
  const abort = new AbortController();
  let saved: JobState | undefined;
  await assert.rejects(
    startJob(request, {
      signal: abort.signal,
      onStateSaved: (state) => {
        saved = structuredClone(state) as JobState;
        if (state.done.includes("converted")) abort.abort();
      },
    }),
    JobInterruptedError,
  );
  assert.ok(saved !== undefined);
  const state: JobState = saved;
  assert.ok(state.done.includes("converted"), "the job stopped after its conversion");
  assert.ok((await stat(state.files.converted!)).isFile(), "the converted file is there");
  return { state, source, to };
}

async function resumed(id: string, options: { leased?: boolean } = {}) {
  const events: WorkEvent[] = [];
  const result = await resumeJob(id, { onEvent: (e) => events.push(e) }, options);
  const redo = events.find((e) => e.event === "message" && /^redoing/.test(e.text));
  return { result, redo: redo?.event === "message" ? redo.text : undefined, events };
}

test("a converted file removed before the resume is converted again; one image in the destination", async (t) => {
  const dir = await scratch(t);
  process.env.CHROMOGENIC_STATE_DIR = join(stateRoot, "host-1");
  const { state, source, to } = await interruptedAfterConversion(dir);
  await rm(state.files.converted!);
  const { result, redo, events } = await resumed(state.id);
  assert.equal(redo, "redoing converted: the files an earlier run made are not on this host");
  assert.ok(events.some((e) => e.event === "phase" && e.phase === "convert" && e.state === "end"));
  const files = await storeFiles(to);
  assert.equal(files.images.length, 1, "one image in the destination");
  assert.deepEqual(files.other, [], "no partial upload left");
  assert.equal(result.image?.id && files.images[0]!.includes(result.image.id), true);
  assert.equal((await qemuCompare(source, files.images[0]!)).code, 0);
});

test("a state taken over on another host (another state folder) redoes its local steps, even alive", async (t) => {
  const dir = await scratch(t);
  process.env.CHROMOGENIC_STATE_DIR = join(stateRoot, "host-2");
  const { state, source, to } = await interruptedAfterConversion(dir);
  // As the job store holds it: saved while running, by a process that (here) is alive: the test runner.
  const saved = { ...state, status: "running", pid: process.ppid };
  process.env.CHROMOGENIC_STATE_DIR = join(stateRoot, "host-3");
  await adoptJob(saved);
  await assert.rejects(resumeJob(state.id), /is still running/, "without a lease the live process is respected");
  assert.equal((await loadJob(state.id)).status, "running");
  const { redo } = await resumed(state.id, { leased: true });
  assert.equal(redo, "redoing converted: the files an earlier run made are not on this host");
  const files = await storeFiles(to);
  assert.equal(files.images.length, 1, "one image in the destination");
  assert.equal((await qemuCompare(source, files.images[0]!)).code, 0);
});

test("a resume that finds its converted file uploads it without converting again", async (t) => {
  const dir = await scratch(t);
  process.env.CHROMOGENIC_STATE_DIR = join(stateRoot, "host-4");
  const { state, source, to } = await interruptedAfterConversion(dir);
  const { redo, events } = await resumed(state.id);
  assert.equal(redo, undefined);
  assert.ok(!events.some((e) => e.event === "phase" && e.phase === "convert"), "no second conversion");
  const files = await storeFiles(to);
  assert.equal(files.images.length, 1);
  assert.equal((await qemuCompare(source, files.images[0]!)).code, 0);
});
