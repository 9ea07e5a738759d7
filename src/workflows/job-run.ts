/**
 * One run of a job (a start or a resume): what every step of it shares — the saved state, the two stores, the
 * work directory, the caller's signal and event listener. The steps (job-source.ts, job-preflight.ts,
 * passthrough.ts, clean-transfer.ts, deliver-image.ts, …) take it instead of each resolving the clouds again,
 * and save the state through it at every step so that a resume continues where this run stopped.
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { AbortedError } from "../formats/errors.js";
import type { ProgressListener } from "../formats/engine/progress.js";
import type { ImageProvider } from "../providers/provider.js";
import { resolveCloud } from "./cloud-names.js";
import { jobDir, saveJob, type JobRequest, type JobState } from "./job-state.js";
import { PhaseMeter, type WorkflowListener, type WorkflowPhase } from "./workflow-events.js";

export interface JobContext {
  readonly signal?: AbortSignal;
  readonly onEvent?: WorkflowListener;
  /** Called once the job's id exists (the CLI prints it so the user can resume). */
  readonly onJobCreated?: (id: string) => void;
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

  /** `--work-dir DIR` puts the job's temporary files in DIR/<id> (removed at the end), else in its state dir. */
  async prepareWorkDir(): Promise<void> {
    this.workDir = this.request.workDir ? join(resolve(this.request.workDir), this.state.id) : jobDir(this.state.id);
    await mkdir(this.workDir, { recursive: true, mode: 0o700 });
  }

  save(): Promise<void> {
    return saveJob(this.state);
  }

  phase(phase: WorkflowPhase, state: "start" | "end", detail?: string): void {
    this.context.onEvent?.({ event: "phase", job: this.state.id, phase, state, detail });
  }

  message(text: string, level: "info" | "warning" = "info"): void {
    this.context.onEvent?.({ event: "message", job: this.state.id, level, text });
  }

  meter(phase: WorkflowPhase, total: number | null, startBytes = 0): PhaseMeter {
    return new PhaseMeter(this.state.id, phase, total, this.context.onEvent, 250, startBytes);
  }

  /** The format engine's progress events, as a workflow phase's. */
  engineProgress(phase: WorkflowPhase): ProgressListener {
    const meter = this.meter(phase, null);
    return (e) => meter.set(e.bytesDone, e.bytesTotal);
  }

  checkAborted(): void {
    if (this.signal?.aborted) throw new AbortedError();
  }
}
