/**
 * One run of a job (a start or a resume): what every step of it shares — the saved state, the two stores, the
 * work directory, the caller's signal and event listener. The steps (job-source.ts, job-preflight.ts,
 * passthrough.ts, clean-transfer.ts, deliver-image.ts, …) take it instead of each resolving the clouds again,
 * and save the state through it at every step so that a resume continues where this run stopped.
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { AbortedError } from "../util/errors.js";
import type { Phase, WorkListener } from "../util/events.js";
import { ProgressMeter } from "../util/progress-meter.js";
import type { GuestFacts, ImageProvider } from "../providers/provider.js";
import { resolveCloud } from "./cloud-names.js";
import { jobDir, saveJob, type JobRequest, type JobState } from "./job-state.js";

export interface JobContext {
  readonly signal?: AbortSignal;
  /** Every event of the job (util/events.ts), each naming the job. */
  readonly onEvent?: WorkListener;
  /** Called once the job's id exists (the CLI prints it so the user can resume). */
  readonly onJobCreated?: (id: string) => void;
  /**
   * Called after each step's state is saved, and awaited before the job goes on: a service copies it into its
   * job store, so that when this host dies a worker elsewhere resumes from a state at least as new as anything
   * this run did in a cloud. A failure here fails the step, as a failed save does.
   */
  readonly onStateSaved?: (state: Readonly<JobState>) => Promise<void> | void;
}

/** `--work-dir DIR` puts the job's temporary files in DIR/<id> (removed at the end), else in its state dir. */
export function jobWorkDir(state: Pick<JobState, "id" | "request">): string {
  return state.request.workDir ? join(resolve(state.request.workDir), state.id) : jobDir(state.id);
}

export class JobRun {
  readonly started = performance.now();
  readonly request: JobRequest;
  readonly source: ImageProvider;
  readonly destination: ImageProvider | undefined;
  /** Set by `prepareWorkDir`; empty until then (the leftover removal then leaves files alone). */
  workDir = "";
  /** The source image's properties (copied to the new image; read again on a resume, not saved). */
  sourceProperties: Readonly<Record<string, string>> | undefined;
  /** Whether the preflight already sized the file output exactly (else delivery checks it once the source is open). */
  outputChecked = false;
  /** The data bytes of the source the preflight opened in place, when it could tell: a conversion's progress total. */
  sourceDataBytes: number | undefined;
  /** What inspecting the source disk found (its firmware), told to a destination that needs it. */
  guestFacts: GuestFacts | undefined;

  constructor(
    readonly state: JobState,
    readonly context: JobContext,
  ) {
    this.request = state.request;
    this.source = resolveCloud(this.request.source.cloud);
    this.destination =
      this.request.destination.kind === "cloud" ? resolveCloud(this.request.destination.cloud) : undefined;
  }

  get signal(): AbortSignal | undefined {
    return this.context.signal;
  }

  async prepareWorkDir(): Promise<void> {
    this.workDir = jobWorkDir(this.state);
    await mkdir(this.workDir, { recursive: true, mode: 0o700 });
  }

  async save(): Promise<void> {
    await saveJob(this.state);
    await this.context.onStateSaved?.(this.state);
  }

  phase(phase: Phase, state: "start" | "end", detail?: string): void {
    this.context.onEvent?.({ event: "phase", job: this.state.id, phase, state, ...(detail ? { detail } : {}) });
  }

  message(text: string, level: "info" | "warning" = "info"): void {
    this.context.onEvent?.({ event: "message", job: this.state.id, level, text });
  }

  meter(phase: Phase, total: number | null, startBytes = 0): ProgressMeter {
    return new ProgressMeter({
      job: this.state.id,
      phase,
      total,
      listener: this.context.onEvent,
      intervalMs: 250,
      startBytes,
    });
  }

  /** A listener for the events of the format engine or of cleaning: they reach the job's, each naming the job. */
  forward(): WorkListener | undefined {
    const onEvent = this.context.onEvent;
    return onEvent && ((event) => onEvent({ ...event, job: this.state.id }));
  }

  checkAborted(): void {
    if (this.signal?.aborted) throw new AbortedError();
  }
}
