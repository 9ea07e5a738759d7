/**
 * The engine of every image workflow (create-image, export, migrate) and of `resume`: one job moves one image
 * from a source store (optionally snapshotting an instance first) to a destination store or a local file,
 * optionally converting and cleaning it, with its state saved at every step (job-state.ts). This file only
 * orders the steps; each lives in its own file (job-source, job-preflight, passthrough, clean-transfer,
 * deliver-image, job-verify, job-cleanup), sharing one `JobRun` (job-run.ts).
 *
 * Data flows (the plan says which one a job takes, and why):
 *   passthrough  same format, no cleaning: download stream → upload stream, nothing on disk; the source's hash
 *                is checked as the bytes pass, the destination's (Glance's sha512 of what it stored) against
 *                what was sent, and both recorded hashes compared when they use one algorithm.
 *   convert      formats differ, no cleaning: the source is read in place (local store), by positional reads
 *                (raw, VMDK and qcow2 over HTTP Range; an OVA's disk too), or else downloaded once as-is (compact)
 *                and resumably; the target is written straight into the upload stream when
 *                it is sequential (raw, streamOptimized VMDK) or into one compact temporary file (qcow2, VHD,
 *                VDI: their writers seek), then uploaded.
 *   clean        exactly one sparse raw working copy (downloaded or converted into), cleaned in place, then
 *                converted out as above.
 *   bootable     (a step of convert or clean, bootable-step.ts) the disk as a local file — the working copy,
 *                the local store's file or the downloaded source — made to boot on a PC in a raw working disk,
 *                then converted out as above; a disk that already boots is converted out as it is.
 * Before any byte moves, a preflight compares the temporary space the plan needs with the space free; a source
 * read in place is opened first and sized by the guest data it holds (a compressed qcow2 holds several times its
 * stored size), and a downloaded one has its output checked again once it is open, before the output is written.
 */
import { resolve } from "node:path";
import { AbortedError, UsageError, errorCode } from "../util/errors.js";
import { openImage } from "../formats/engine/open-image.js";
import { countData } from "../formats/engine/convert.js";
import type { ImageSource } from "../formats/types.js";
import type { ProviderImage } from "../providers/provider.js";
import { cleaningUnavailable, type CleanSummary } from "./clean-step.js";
import { cleanOnce, makeWorkingCopy } from "./clean-transfer.js";
import { bootableUnavailable, makeJobBootable, type JobDisk } from "./bootable-step.js";
import { deliverImage } from "./deliver-image.js";
import { deleteSnapshot, removeLeftovers, removeTemporaryFiles } from "./job-cleanup.js";
import { makePlan, preflight } from "./job-preflight.js";
import { JobRun, type JobContext } from "./job-run.js";
import { findSource } from "./job-source.js";
import { imageInCloud } from "./image-in-cloud.js";
import {
  createJob,
  loadJob,
  processAlive,
  saveJob,
  type BootableSummary,
  type JobPlan,
  type JobRequest,
  type JobState,
} from "./job-state.js";
import { verifyResult } from "./job-verify.js";
import { forgetMissingWorkFiles } from "./missing-work-files.js";
import { openSource, readsInPlaceNow, sourceFile } from "./open-source.js";
import { passthrough } from "./passthrough.js";

export type { JobContext } from "./job-run.js";

export interface JobResult {
  readonly job: string;
  readonly kind: JobRequest["kind"];
  readonly plan: JobPlan;
  readonly source: { readonly cloud: string; readonly id: string; readonly name: string; readonly format: string };
  /** The new image, when the destination is a store. */
  readonly image?: {
    readonly cloud: string;
    readonly id: string;
    readonly name: string;
    readonly diskFormat?: string;
    readonly sizeBytes?: number;
    readonly visibility: string;
    readonly hash?: { readonly algorithm: string; readonly value: string };
  };
  /** The file written, when the destination is a file. */
  readonly output?: string;
  readonly snapshotDeleted?: boolean;
  /** The instance's snapshot, when one was made (its id stays valid only with keepSnapshot). */
  readonly snapshot?: { readonly id: string; readonly name: string };
  readonly cleaning?: CleanSummary;
  /** What the bootable step did (made it bootable, or found that it already boots), when the plan had one. */
  readonly bootable?: BootableSummary;
  readonly seconds: number;
}

/** Raised when a job stops on Ctrl-C/SIGTERM: its state is kept for `chromogenic resume`. */
export class JobInterruptedError extends AbortedError {
  constructor(readonly jobId: string) {
    super(`job ${jobId} interrupted; \`chromogenic resume ${jobId}\` continues it`);
  }
}

export async function startJob(request: JobRequest, context: JobContext = {}): Promise<JobResult> {
  if (request.clean) {
    const why = cleaningUnavailable();
    if (why) throw new UsageError(`--clean: ${why}`);
  }
  if (request.bootable?.when === "always") {
    const why = bootableUnavailable();
    if (why) throw new UsageError(`--bootable: ${why}`);
  }
  if (!request.source.image === !request.source.instance) {
    throw new UsageError("name exactly one source: an image or an instance");
  }
  const state = await createJob(request);
  context.onJobCreated?.(state.id);
  return runJob(state, context);
}

export interface ResumeOptions {
  /**
   * The caller holds the job by a lease of its own (a service's job store), which is the authority on who runs
   * it: the process recorded in the state is not asked whether it lives (its pid may be another host's).
   */
  readonly leased?: boolean;
}

export async function resumeJob(id: string, context: JobContext = {}, options: ResumeOptions = {}): Promise<JobResult> {
  const state = await loadJob(id);
  if (state.status === "done" && state.result) return state.result as unknown as JobResult;
  if (!options.leased && state.status === "running" && processAlive(state.pid)) {
    throw new UsageError(`job ${id} is still running (process ${state.pid})`);
  }
  const redone = await forgetMissingWorkFiles(state);
  state.pid = process.pid;
  state.status = "running";
  state.error = undefined;
  state.errorCode = undefined;
  await saveJob(state);
  context.onJobCreated?.(state.id);
  if (redone.length > 0) {
    const text = `redoing ${redone.join(", ")}: the files an earlier run made are not on this host`;
    context.onEvent?.({ event: "message", job: state.id, level: "info", text });
  }
  return runJob(state, context);
}

async function runJob(state: JobState, context: JobContext): Promise<JobResult> {
  const run = new JobRun(state, context);
  try {
    return await runSteps(run);
  } catch (e) {
    if (context.signal?.aborted) {
      state.status = "interrupted";
      state.error = "cancelled";
      state.errorCode = "EABORTED";
      await saveJob(state).catch(() => undefined);
      throw new JobInterruptedError(state.id);
    }
    state.status = "failed";
    state.error = (e as Error).message ?? String(e);
    state.errorCode = errorCode(e);
    if (!state.request.keep) await removeLeftovers(run).catch(() => undefined);
    await saveJob(state).catch(() => undefined);
    if (e instanceof Error) {
      e.message = `job ${state.id}: ${e.message}${state.request.keep ? " (leftovers kept: --keep)" : ""}`;
    }
    throw e;
  }
}

/** source → plan → preflight → transfer (per the plan's mode) → verify → snapshot and temporary files removed. */
async function runSteps(run: JobRun): Promise<JobResult> {
  const { state } = run;
  await run.prepareWorkDir();
  const inCloud = await imageInCloud(run);
  if (inCloud) return await finish(run, inCloud.plan, inCloud.image);
  if (!state.source) await findSource(run);
  const source = state.source!;
  // A resumed job reads the source's properties again (they are copied to the new image, not saved).
  run.sourceProperties ??= (await run.source.getImage(source.id))?.properties;
  if (!state.plan) {
    state.plan = await makePlan(run);
    await run.save();
  }
  const plan = state.plan;
  // A source read where it is stored is opened before the preflight, which asks it how much guest data the
  // output will hold, and is then converted from: opened once.
  let inPlace: ImageSource | undefined;
  try {
    if (readsInPlaceNow(run, plan)) inPlace = await openSource(run);
    await preflight(run, plan, inPlace);
    run.checkAborted();
    state.phase = "transfer";
    await run.save();
  } catch (e) {
    await inPlace?.close().catch(() => undefined);
    throw e;
  }
  let image: ProviderImage | undefined;
  let cleaning: CleanSummary | undefined;
  if (plan.mode === "passthrough") {
    image = await passthrough(run);
  } else if (plan.mode === "convert" && !plan.bootable) {
    image = await deliverImage(run, inPlace ?? (await openSource(run)), run.sourceDataBytes);
  } else {
    // A disk on this host: the cleaned working copy, or the source as a file (the local store's, or downloaded).
    let disk: JobDisk;
    if (plan.mode === "clean") {
      const work = await makeWorkingCopy(run, inPlace);
      cleaning = await cleanOnce(run, work);
      disk = { path: work, format: "raw" };
    } else {
      await inPlace?.close();
      disk = { path: await sourceFile(run), format: source.format };
    }
    if (plan.bootable) disk = await makeJobBootable(run, disk);
    const { source: diskSource } = await openImage(disk.path, { format: disk.format });
    // A local file: its map is walked alongside for the conversion's total.
    image = await deliverImage(run, diskSource, countData(diskSource));
  }
  run.phase("verify", "start");
  await verifyResult(run, image);
  run.phase("verify", "end");

  return await finish(run, plan, image, cleaning);
}

/** The job's end: the temporary snapshot and files removed, the result recorded as the job's. */
async function finish(
  run: JobRun,
  plan: JobPlan,
  image: ProviderImage | undefined,
  cleaning?: CleanSummary,
): Promise<JobResult> {
  const { state, request } = run;
  const source = state.source ?? {
    id: request.source.instance ?? "",
    name: request.source.instance ?? "",
    format: plan.sourceFormat,
  };
  const snapshotDeleted = request.keepSnapshot ? false : await deleteSnapshot(run);
  await removeTemporaryFiles(run);
  const dest = request.destination;
  const result: JobResult = {
    job: state.id,
    kind: request.kind,
    plan,
    source: { cloud: request.source.cloud, id: source.id, name: source.name, format: source.format },
    image:
      image && dest.kind === "cloud"
        ? {
            cloud: dest.cloud,
            id: image.id,
            name: image.name,
            diskFormat: image.diskFormat,
            sizeBytes: image.sizeBytes,
            visibility: image.visibility,
            hash: image.hash,
          }
        : undefined,
    output: dest.kind === "file" ? resolve(dest.path) : undefined,
    snapshotDeleted: state.snapshot ? snapshotDeleted : undefined,
    snapshot: state.snapshot?.id ? { id: state.snapshot.id, name: state.snapshot.name } : undefined,
    cleaning,
    bootable: state.bootable,
    seconds: (performance.now() - run.started) / 1000,
  };
  state.status = "done";
  state.phase = "done";
  state.result = result as unknown as Record<string, unknown>;
  await run.save();
  return result;
}
