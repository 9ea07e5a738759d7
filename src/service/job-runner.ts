/**
 * Runs one job a worker holds, exactly as the CLI command of its kind would: image-create, export and migrate
 * through the library's startJob (or resumeJob when an earlier attempt saved its state: its worker died or
 * stopped), convert through convertFile, clean through cleanImage. Every event the work emits goes to the job
 * store in order (job-event-sink.ts), ending with the `done` or `error` event the CLI prints with --json; the
 * outcome goes to `finish`.
 *
 * While it runs, the lease is renewed (lease-heartbeat.ts) and each state the library saves is copied into the
 * store, so that a worker on another host resumes from it. Three things stop the work through its AbortSignal:
 *   cancel     (asked through the store): the job's cloud leftovers and files are removed as after a failure,
 *              and it ends `cancelled`;
 *   stop       (the worker is stopping, SIGTERM): the state stays saved, the lease is released at once, and
 *              the next worker to claim the job resumes it;
 *   lost lease (another worker holds the job now): nothing more is written, finished or removed — what the
 *              job made belongs to its new holder.
 */
import type { CommandName } from "../util/events.js";
import { AbortedError, UsageError } from "../util/errors.js";
import { doneEvent, errorEvent } from "../util/result-events.js";
import { requireRoot } from "../util/require-root.js";
import { resumeJob, startJob, type JobContext } from "../workflows/image-job.js";
import { discardJob, removeJob } from "../workflows/job-removal.js";
import { adoptJob, type JobState } from "../workflows/job-state.js";
import { JobSpecSchema, type JobKind, type JobSpec } from "./job-spec.js";
import { JobEventSink } from "./job-event-sink.js";
import type { JobOutcome, JobStore } from "./job-store.js";
import { startLeaseHeartbeat } from "./lease-heartbeat.js";
import type { ServiceJob } from "./service-job.js";
import { checkJobPaths, PathNotAllowedError, type AllowedFolders } from "./service-paths.js";

export interface RunJobOptions {
  /** The worker holding the job (the id it claimed it with). */
  readonly worker: string;
  /** The lease's length, as claimed: renewed every third of it. */
  readonly leaseMs: number;
  /** Aborted when the worker stops: the job is interrupted, its state kept, and its lease released. */
  readonly stopping?: AbortSignal;
  /** How often at most the job's progress summary is written (default 400 ms). */
  readonly progressIntervalMs?: number;
  /**
   * The folders the service's jobs may use (service-paths.ts): the job's paths are checked again right before it
   * runs, where they lead now — a link planted since the API checked them is refused. Undefined: not checked.
   */
  readonly folders?: AllowedFolders;
}

/** How a run ended: the job's final state, or `released` (the worker stopped) or `lost` (another holds it). */
export type RunEnd = JobOutcome["state"] | "released" | "lost";

/** The CLI command whose `done` event ends a job of each kind. */
const COMMAND_OF: Record<JobKind, CommandName> = {
  "image-create": "image create",
  export: "export",
  migrate: "migrate",
  convert: "convert",
  clean: "clean",
};

/** Raised by the state copy when the store refuses it: the lease is gone, and the work stops at that step. */
class LeaseLostError extends AbortedError {
  constructor() {
    super("this worker no longer holds the job's lease");
  }
}

export async function runServiceJob(store: JobStore, job: ServiceJob, options: RunJobOptions): Promise<RunEnd> {
  const { worker } = options;
  const work = new AbortController();
  let reason: "cancel" | "stop" | "lost" | undefined;
  const stopWork = (why: "cancel" | "stop" | "lost") => {
    // A cancel outranks a stop (it is final); losing the lease outranks both (the job is no longer ours).
    if (reason === "lost" || (reason === "cancel" && why === "stop")) return;
    reason = why;
    work.abort(new AbortedError(why === "cancel" ? "cancelled" : "interrupted"));
  };
  const onStopping = () => stopWork("stop");
  if (options.stopping?.aborted) onStopping();
  options.stopping?.addEventListener("abort", onStopping, { once: true });
  if (job.cancelRequested) stopWork("cancel");

  const sink = new JobEventSink(store, job.id, worker, options.progressIntervalMs);
  const heartbeat = startLeaseHeartbeat({
    store,
    job: job.id,
    worker,
    leaseMs: options.leaseMs,
    onLost: () => stopWork("lost"),
    onCancel: () => stopWork("cancel"),
  });
  let libraryJob: string | undefined;
  let lastState: Readonly<JobState> | undefined;
  const context: Required<JobContext> = {
    signal: work.signal,
    onEvent: sink.push,
    onJobCreated: (id) => {
      libraryJob = id;
      sink.push({ event: "job", job: id });
    },
    keepLeftovers: () => reason === "lost",
    onStateSaved: async (state) => {
      lastState = state;
      if (!(await store.update(job.id, worker, { workflowState: state }))) {
        stopWork("lost");
        throw new LeaseLostError();
      }
    },
  };

  let outcome: JobOutcome;
  try {
    const parsed = JobSpecSchema.safeParse(job.spec);
    if (!parsed.success) throw new UsageError(`job ${job.id}: its spec is not valid: ${parsed.error.message}`);
    const spec = parsed.data;
    if (reason === "cancel") throw new AbortedError("cancelled");
    if (options.folders) await checkPathsNow(spec, options.folders);
    const result = await runSpec(store, job, spec, context);
    // The work can end between two renewals after another worker took the job: its done event is not this
    // worker's to write then. One renewal now tells.
    if (reason !== "lost" && !(await store.renew(job.id, worker, options.leaseMs))) stopWork("lost");
    if (reason === "lost") throw new LeaseLostError();
    sink.push(doneEvent(COMMAND_OF[spec.kind], result));
    // The bytes a cloud job moved (its state's count), for the service's metrics; the done event stays the CLI's.
    outcome = { state: "succeeded", result: { ...result, ...(lastState ? { bytes: { ...lastState.bytes } } : {}) } };
  } catch (e) {
    if (reason === "lost") {
      heartbeat.stop();
      sink.discard();
      return "lost";
    }
    if (reason === "stop") {
      sink.push({ event: "message", level: "info", text: `worker ${worker} stopped: the job goes to another worker` });
      heartbeat.stop();
      await sink.flush();
      await store.release(job.id, worker);
      return "released";
    }
    let failure = e;
    if (reason === "cancel") {
      const left = libraryJob ?? (await adoptedJob(store, job));
      // The cancel itself succeeded: a leftover that cannot be removed now is told, and named in the job's log.
      if (left) await discardJob(left).catch((d: unknown) => sink.push(leftoverWarning(d)));
      // Not the CLI's "interrupted; resume continues it": a cancelled job is over.
      failure = new AbortedError("cancelled");
    }
    const event = errorEvent(failure, libraryJob);
    sink.push(event);
    outcome = {
      state: reason === "cancel" ? "cancelled" : "failed",
      error: { code: event.code, message: event.message },
    };
  } finally {
    options.stopping?.removeEventListener("abort", onStopping);
  }
  heartbeat.stop();
  await sink.flush();
  const finished = await store.finish(job.id, worker, outcome);
  // The store holds the job's record from now on; a failed job that kept leftovers (--keep) stays listed here.
  if (finished && libraryJob) await removeJob(libraryJob).catch(() => undefined);
  return finished ? outcome.state : "lost";
}

/** The work of `spec`, as its CLI command does it; its result is what the `done` event carries. */
async function runSpec(store: JobStore, job: ServiceJob, spec: JobSpec, context: Required<JobContext>) {
  switch (spec.kind) {
    case "convert": {
      const { convertFile } = await import("../formats/engine/convert.js");
      return convertFile({
        input: spec.input,
        output: spec.output,
        outputFormat: spec.format,
        createOptions: { ...spec.options },
        signal: context.signal,
        onProgress: context.onEvent,
        onWarning: (text) => context.onEvent({ event: "message", level: "warning", text }),
      });
    }
    case "clean": {
      requireRoot("clean");
      const { cleanImage } = await import("../operations/cleaning/clean-image.js");
      return cleanImage(spec.input, {
        output: spec.output,
        profile: spec.profile,
        operations: spec.operations,
        signal: context.signal,
        onEvent: context.onEvent,
      });
    }
    default: {
      const { kind, ...rest } = spec;
      const saved = job.attempts > 1 ? await store.workflowState(job.id) : undefined;
      if (saved === undefined) return startJob({ kind, ...rest }, context);
      const state = await adoptJob(saved);
      if (state.request.kind !== kind) throw new UsageError(`job ${job.id}: its saved state is of another kind`);
      return resumeJob(state.id, context, { leased: true });
    }
  }
}

function leftoverWarning(error: unknown) {
  const text = `removing what the cancelled job left failed: ${errorEvent(error).message}`;
  return { event: "message", level: "warning", text } as const;
}

/** The job's paths checked where they lead now; one outside the allowed folders fails the job as a usage error. */
async function checkPathsNow(spec: JobSpec, folders: AllowedFolders): Promise<void> {
  try {
    await checkJobPaths(spec, folders);
  } catch (e) {
    if (e instanceof PathNotAllowedError) throw new UsageError(e.message);
    throw e;
  }
}

/** The library's job of an earlier attempt, written here so that its leftovers can be removed; undefined if none. */
async function adoptedJob(store: JobStore, job: ServiceJob): Promise<string | undefined> {
  if (job.attempts <= 1 || job.kind === "convert" || job.kind === "clean") return undefined;
  const saved = await store.workflowState(job.id);
  return saved === undefined ? undefined : (await adoptJob(saved)).id;
}
