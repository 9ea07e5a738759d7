/**
 * The engine of every image workflow (create-image, export, migrate) and of `resume`: one job moves one image
 * from a source store (optionally snapshotting an instance first) to a destination store or a local file,
 * optionally converting and cleaning it, with its state saved at every step (job-state.ts).
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
 * Before any byte moves, a preflight compares the temporary space the plan needs with the space free; a source
 * read in place is opened first and sized by the guest data it holds (a compressed qcow2 holds several times its
 * stored size), and a downloaded one has its output checked again once it is open, before the output is written.
 */
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { AbortedError, ChromogenicError, UsageError } from "../formats/errors.js";
import { convertImage } from "../formats/engine/convert.js";
import { openImage } from "../formats/engine/open-image.js";
import type { ProgressListener } from "../formats/engine/progress.js";
import { TemporaryOutputFile } from "../formats/io/output-file.js";
import { exportOva } from "../formats/ova/ova-writer.js";
import type { OvaTargetName } from "../formats/ova/ova-targets.js";
import { getDriver } from "../formats/registry.js";
import type { CreateOptions, ImageSource } from "../formats/types.js";
import type { ImageProvider, ProviderImage, UploadImageRequest, UploadOptions } from "../providers/provider.js";
import { OpenStackProvider, toProviderImage } from "../providers/openstack/openstack-provider.js";
import { resolveCloud } from "./cloud-names.js";
import { cleanWorkingCopy, cleaningUnavailable, type CleanSummary } from "./clean-step.js";
import {
  createJob,
  jobDir,
  loadJob,
  processAlive,
  saveJob,
  type JobPlan,
  type JobRequest,
  type JobState,
} from "./job-state.js";
import { checkSpace, type SpaceNeed } from "./preflight.js";
import { openReaderSource } from "./reader-source.js";
import { planTransfer, temporarySpace } from "./job-plan.js";
import { allocatedBytes, hashFile, hashStream, writeAll, writeSparse } from "./job-files.js";
import { UploadStreamOutput } from "./upload-stream-output.js";
import { PhaseMeter, type WorkflowListener, type WorkflowPhase } from "./workflow-events.js";

export interface JobContext {
  readonly signal?: AbortSignal;
  readonly onEvent?: WorkflowListener;
  /** Called once the job's id exists (the CLI prints it so the user can resume). */
  readonly onJobCreated?: (id: string) => void;
}

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
  if (!request.source.image === !request.source.instance) {
    throw new UsageError("name exactly one source: an image or an instance");
  }
  const state = await createJob(request);
  context.onJobCreated?.(state.id);
  return runJob(state, context);
}

export async function resumeJob(id: string, context: JobContext = {}): Promise<JobResult> {
  const state = await loadJob(id);
  if (state.status === "done" && state.result) return state.result as unknown as JobResult;
  if (state.status === "running" && processAlive(state.pid)) {
    throw new UsageError(`job ${id} is still running (process ${state.pid})`);
  }
  state.pid = process.pid;
  state.status = "running";
  state.error = undefined;
  await saveJob(state);
  context.onJobCreated?.(state.id);
  return runJob(state, context);
}

async function runJob(state: JobState, context: JobContext): Promise<JobResult> {
  const runner = new JobRunner(state, context);
  try {
    return await runner.run();
  } catch (e) {
    if (context.signal?.aborted) {
      state.status = "interrupted";
      state.error = "cancelled";
      await saveJob(state).catch(() => undefined);
      throw new JobInterruptedError(state.id);
    }
    state.status = "failed";
    state.error = (e as Error).message ?? String(e);
    if (!state.request.keep) await runner.removeLeftovers().catch(() => undefined);
    await saveJob(state).catch(() => undefined);
    if (e instanceof ChromogenicError || e instanceof Error) {
      e.message = `job ${state.id}: ${e.message}${state.request.keep ? " (leftovers kept: --keep)" : ""}`;
    }
    throw e;
  }
}

/** Properties a snapshot carries that describe the snapshot itself, not the disk: not copied to a new image. */
const SNAPSHOT_ONLY_PROPERTIES = new Set([
  "image_type",
  "instance_uuid",
  "user_id",
  "image_location",
  "image_state",
  "owner_id",
  "owner_project_name",
  "owner_user_name",
  "base_image_ref",
  "boot_roles",
  "chromogenic_job",
  "stores",
]);

const CHECKPOINT_BYTES = 64 * 2 ** 20;

class JobRunner {
  private readonly started = performance.now();
  private readonly request: JobRequest;
  private readonly source: ImageProvider;
  private readonly destination: ImageProvider | undefined;
  private workDir = "";

  constructor(
    private readonly state: JobState,
    private readonly context: JobContext,
  ) {
    this.request = state.request;
    this.source = resolveCloud(this.request.source.cloud);
    this.destination =
      this.request.destination.kind === "cloud" ? resolveCloud(this.request.destination.cloud) : undefined;
  }

  private get signal(): AbortSignal | undefined {
    return this.context.signal;
  }

  private save(): Promise<void> {
    return saveJob(this.state);
  }

  private phase(phase: WorkflowPhase, state: "start" | "end", detail?: string): void {
    this.context.onEvent?.({ event: "phase", job: this.state.id, phase, state, detail });
  }

  private message(text: string, level: "info" | "warning" = "info"): void {
    this.context.onEvent?.({ event: "message", job: this.state.id, level, text });
  }

  private meter(phase: WorkflowPhase, total: number | null, startBytes = 0): PhaseMeter {
    return new PhaseMeter(this.state.id, phase, total, this.context.onEvent, 250, startBytes);
  }

  /** The format engine's progress events, as a workflow phase's. */
  private engineProgress(phase: WorkflowPhase): ProgressListener {
    const meter = this.meter(phase, null);
    return (e) => meter.set(e.bytesDone, e.bytesTotal);
  }

  private checkAborted(): void {
    if (this.signal?.aborted) throw new AbortedError();
  }

  async run(): Promise<JobResult> {
    this.workDir = this.request.workDir ? join(resolve(this.request.workDir), this.state.id) : jobDir(this.state.id);
    await mkdir(this.workDir, { recursive: true, mode: 0o700 });
    if (!this.state.source) await this.findSource();
    const source = this.state.source!;
    // A resumed job reads the source's properties again (they are copied to the new image, not saved).
    this.sourceProperties ??= (await this.source.getImage(source.id))?.properties;
    if (!this.state.plan) {
      this.state.plan = await this.makePlan();
      await this.save();
    }
    const plan = this.state.plan;
    // A source read where it is stored is opened before the preflight, which asks it how much guest data the
    // output will hold, and is then converted from: opened once.
    let inPlace: ImageSource | undefined;
    try {
      if (this.readsInPlaceNow(plan)) inPlace = await this.openSource();
      await this.preflight(plan, inPlace);
      this.checkAborted();
      this.state.phase = "transfer";
      await this.save();
    } catch (e) {
      await inPlace?.close().catch(() => undefined);
      throw e;
    }
    let image: ProviderImage | undefined;
    let cleaning: CleanSummary | undefined;
    if (plan.mode === "passthrough") {
      image = await this.passthrough();
    } else if (plan.mode === "convert") {
      image = await this.deliver(inPlace ?? (await this.openSource()));
    } else {
      const work = await this.makeWorkingCopy(inPlace);
      cleaning = await this.clean(work);
      const { source: workSource } = await openImage(work, { format: "raw" });
      image = await this.deliver(workSource);
    }
    this.phase("verify", "start");
    await this.verify(image);
    this.phase("verify", "end");

    const snapshotDeleted = this.request.keepSnapshot ? false : await this.deleteSnapshot();
    await this.removeTemporaryFiles();
    const dest = this.request.destination;
    const result: JobResult = {
      job: this.state.id,
      kind: this.request.kind,
      plan,
      source: { cloud: this.request.source.cloud, id: source.id, name: source.name, format: source.format },
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
      snapshotDeleted: this.state.snapshot ? snapshotDeleted : undefined,
      snapshot: this.state.snapshot?.id ? { id: this.state.snapshot.id, name: this.state.snapshot.name } : undefined,
      cleaning,
      seconds: (performance.now() - this.started) / 1000,
    };
    this.state.status = "done";
    this.state.phase = "done";
    this.state.result = result as unknown as Record<string, unknown>;
    await this.save();
    return result;
  }

  // ── source ────────────────────────────────────────────────────────────────────────────────────────────

  private async findSource(): Promise<void> {
    const req = this.request.source;
    let image: ProviderImage | undefined;
    if (req.instance) {
      image = await this.snapshot(req.instance);
    } else {
      image = await this.source.getImage(req.image!);
      if (!image) throw new UsageError(`${this.source.label}: no image "${req.image}"`);
      if (image.state !== "ready") {
        throw new UsageError(`${this.source.label}: image ${image.id} is ${image.rawStatus}, not ready to read`);
      }
    }
    if (!image.diskFormat || image.sizeBytes === undefined) {
      throw new UsageError(`${this.source.label}: image ${image.id} records no disk format or size`);
    }
    this.state.source = {
      id: image.id,
      name: image.name,
      format: image.diskFormat,
      size: image.sizeBytes,
      hash: image.hash,
    };
    if (image.hash) this.state.checksums.source = image.hash;
    this.sourceProperties = image.properties;
    await this.save();
  }

  private sourceProperties: Readonly<Record<string, string>> | undefined;

  /** The temporary snapshot: named before it is made, so a resume finds it even if its id was never saved. */
  private async snapshot(instance: string): Promise<ProviderImage> {
    this.state.snapshot ??= { name: `chromogenic-snapshot-${this.state.id}` };
    this.state.phase = "snapshot-wait";
    await this.save();
    const snap = this.state.snapshot;
    let image = await this.source.getImage(snap.id ?? snap.name);
    if (image?.state === "failed") {
      await this.source.deleteImage(image.id);
      image = undefined;
    }
    this.phase("snapshot-wait", "start", `snapshot of ${instance} as ${snap.name}`);
    const meter = this.meter("snapshot-wait", null);
    const ticker = setInterval(() => meter.tick(), 1000);
    try {
      if (!image) {
        image = await this.source.createImageFromInstance({
          instance,
          imageName: snap.name,
          properties: { chromogenic_job: this.state.id },
          signal: this.signal,
        });
      } else if (image.state === "pending") {
        image = await waitReady(this.source, image.id, this.signal);
      }
    } finally {
      clearInterval(ticker);
    }
    meter.complete();
    snap.id = image.id;
    await this.save();
    this.phase("snapshot-wait", "end", `snapshot ${image.id}`);
    return image;
  }

  // ── plan and preflight ────────────────────────────────────────────────────────────────────────────────

  private async makePlan(): Promise<JobPlan> {
    const src = this.state.source!;
    const localPath = await this.source.localImagePath?.(src.id);
    const destinationCaps = this.destination ? await this.destination.capabilities() : undefined;
    return planTransfer({
      request: this.request,
      source: src,
      sourceLocalAllocated: localPath ? await allocatedBytes(localPath) : undefined,
      sourceRandomAccess: (await this.source.capabilities()).randomAccess,
      destinationFormats: destinationCaps?.diskFormats,
      destinationLabel: this.destination?.label,
      workDir: this.workDir,
    });
  }

  /** Whether this run converts from the source where it is stored (not a download, not a finished working copy). */
  private readsInPlaceNow(plan: JobPlan): boolean {
    if (plan.mode === "passthrough") return false;
    if (plan.sourceAccess !== "local-file" && plan.sourceAccess !== "random-access") return false;
    return !(plan.mode === "clean" && this.state.done.includes("working-copy"));
  }

  /**
   * `source`, when given, is the source already open in place: the working copy, a temporary output and a file
   * destination are then sized by the guest data it holds. Otherwise the plan's estimate (the stored size) stands,
   * and a file output is checked again with the exact figure once its source is open (checkOutputSpace), still
   * before it is written.
   */
  private async preflight(plan: JobPlan, source?: ImageSource): Promise<void> {
    // What earlier runs of this job already wrote counts as used, not needed.
    let existing = 0;
    for (const f of Object.values(this.state.files)) {
      if (f && f.startsWith(this.workDir)) existing += await allocatedBytes(f);
    }
    // An open source tells its guest data, which a working copy or a compact output holds: for a compressed
    // qcow2, many times the stored size the plan estimated with.
    const data = source ? await this.guestDataBytes(source) : undefined;
    const temporary = data === undefined ? plan.temporaryBytes : temporarySpace(plan, this.state.source!.size, data);
    const needs: SpaceNeed[] = [{ path: this.workDir, bytes: temporary - existing, what: "temporary data" }];
    const dest = this.request.destination;
    if (dest.kind === "file") {
      await mkdir(dirname(resolve(dest.path)), { recursive: true });
      // A passthrough writes the stored bytes; a conversion writes the guest data.
      const bytes = plan.mode === "passthrough" ? this.state.source!.size : (data ?? this.state.source!.size);
      this.outputChecked = plan.mode === "passthrough" || source !== undefined;
      needs.push({ path: dirname(resolve(dest.path)), bytes, what: "the output" });
    }
    await checkSpace(needs);
  }

  /** Whether the preflight already sized the file output exactly (else deliver checks it once the source is open). */
  private outputChecked = false;

  /**
   * The guest data `source` holds, the most a converted output, a working copy or a compact temporary output
   * takes: qcow2 counts it in one pass over its L2 tables (a few Range requests for an image read in place), raw
   * from the filesystem's map; a source that cannot tell says its virtual size. An OVA's compressed VMDK holds
   * less, so this over-reserves for it, never under.
   */
  private async guestDataBytes(source: ImageSource): Promise<number> {
    return (await source.details()).allocatedBytes ?? source.virtualSize;
  }

  /** The output's space, checked with the exact guest data before a byte of it is written. */
  private async checkOutputSpace(source: ImageSource, out: string): Promise<void> {
    if (this.outputChecked) return;
    await checkSpace([{ path: dirname(out), bytes: await this.guestDataBytes(source), what: "the output" }]);
  }

  // ── moving bytes ─────────────────────────────────────────────────────────────────────────────────────

  private async passthrough(): Promise<ProviderImage | undefined> {
    const src = this.state.source!;
    const dest = this.request.destination;
    if (dest.kind === "file") {
      const out = resolve(dest.path);
      const partial = join(dirname(out), `.${basename(out)}.${this.state.id}.partial`);
      await this.downloadToFile(partial, src.format === "raw", 0o644);
      await rename(partial, out);
      this.state.files.download = undefined;
      await this.save();
      return undefined;
    }
    if (this.request.serverSide) {
      const copied = await this.serverSideCopy();
      if (copied) return copied;
    }
    // When the destination records the same kind of hash as the source, its own hash of what it stored is
    // compared with the source's: nothing is hashed here, leaving the CPU to the transfer.
    const destHash = (await this.destination!.capabilities()).hashAlgorithm;
    const trusted = src.hash && src.hash.algorithm === destHash ? src.hash : undefined;
    this.phase("download", "start", "streamed straight into the upload");
    const downloadMeter = this.meter("download", src.size);
    const data = this.source.downloadImage(src.id, {
      signal: this.signal,
      verify: !trusted,
      onProgress: (b, t) => downloadMeter.set(b, t),
    });
    const image = await this.upload(data, src.size, trusted);
    if (trusted && image.hash?.algorithm !== trusted.algorithm) {
      // The destination hashes otherwise than announced: read the copy back to prove it.
      this.phase("verify", "start", `${trusted.algorithm} of the copy, read back`);
      const actual = await hashStream(
        this.destination!.downloadImage(image.id, { signal: this.signal }),
        trusted.algorithm,
        this.meter("verify", src.size),
      );
      this.phase("verify", "end");
      if (actual !== trusted.value) throw new Error(`the copy's ${trusted.algorithm} differs from the source's`);
    }
    downloadMeter.complete();
    this.phase("download", "end");
    return image;
  }

  /**
   * Downloads the source's bytes into `path`, resuming where an earlier run stopped (Range), verified against
   * the source's recorded hash: as the bytes pass on a fresh download, by reading the file back after a resume.
   * `sparse` leaves zero blocks as holes (a raw disk); its progress is checkpointed in the state after a sync.
   */
  private async downloadToFile(path: string, sparse: boolean, mode = 0o600): Promise<void> {
    const src = this.state.source!;
    if (this.state.done.includes(`download:${path}`)) return;
    this.state.files.download = path;
    let offset = 0;
    const present = await stat(path).catch(() => undefined);
    if (present) offset = sparse ? Math.min(this.state.bytes.download, present.size) : present.size;
    if (offset > src.size) offset = 0;
    if (!present) this.state.bytes.download = 0;
    await this.save();
    this.phase("download", "start", offset > 0 ? `resuming at byte ${offset}` : undefined);
    const meter = this.meter("download", src.size, offset);
    const handle = await open(path, present ? "r+" : "w", mode);
    try {
      let position = offset;
      let checkpoint = offset;
      const data = this.source.downloadImage(src.id, {
        signal: this.signal,
        offset,
        onProgress: (b, t) => meter.set(b, t),
      });
      for await (const chunk of data) {
        const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (sparse) await writeSparse(handle, buf, position);
        else await writeAll(handle, buf, position);
        position += buf.length;
        if (position - checkpoint >= CHECKPOINT_BYTES) {
          await handle.datasync();
          checkpoint = position;
          this.state.bytes.download = position;
          await this.save();
        }
      }
      if (position !== src.size) throw new Error(`download ended at byte ${position} of ${src.size}`);
      await handle.truncate(src.size);
      await handle.sync();
    } finally {
      await handle.close();
    }
    meter.complete();
    this.phase("download", "end");
    if (offset > 0 && src.hash) {
      // The provider verified nothing of a resumed stream: check the assembled file as a whole.
      this.phase("verify", "start", `${src.hash.algorithm} of the resumed download`);
      const actual = await hashFile(path, src.hash.algorithm, this.meter("verify", src.size), this.signal);
      this.phase("verify", "end");
      if (actual !== src.hash.value.toLowerCase()) {
        await rm(path, { force: true });
        this.state.bytes.download = 0;
        await this.save();
        throw new Error(`the resumed download's ${src.hash.algorithm} differs from the source's; it was removed`);
      }
    }
    this.state.bytes.download = src.size;
    this.state.done.push(`download:${path}`);
    await this.save();
  }

  /** The source as an image the format engine reads, per the plan (downloaded first when it cannot be read in place). */
  private async openSource(): Promise<ImageSource> {
    const src = this.state.source!;
    const plan = this.state.plan!;
    if (plan.sourceAccess === "local-file") {
      const path = (await this.source.localImagePath!(src.id))!;
      return (await openImage(path, { format: src.format })).source;
    }
    if (plan.sourceAccess === "random-access") {
      const reader = await this.source.openImageReader!(src.id, { signal: this.signal });
      return openReaderSource(reader, src.format, `${this.source.label}:${src.id}`);
    }
    const path = join(this.workDir, `source.${src.format}`);
    await this.downloadToFile(path, src.format === "raw");
    return (await openImage(path, { format: src.format })).source;
  }

  /** `opened`: the source, already open in place (owned: closed here). */
  private async makeWorkingCopy(opened?: ImageSource): Promise<string> {
    const src = this.state.source!;
    const work = join(this.workDir, "work.raw");
    this.state.files.work = work;
    if (this.state.done.includes("working-copy")) {
      await opened?.close();
      return work;
    }
    await this.save().catch(async (e: unknown) => {
      await opened?.close().catch(() => undefined);
      throw e;
    });
    const plan = this.state.plan!;
    if (plan.sourceAccess === "stream") {
      await opened?.close();
      await this.downloadToFile(work, true);
    } else {
      const source = opened ?? (await this.openSource());
      this.phase("convert", "start", `${src.format} → raw working copy`);
      try {
        const output = await TemporaryOutputFile.create(work);
        try {
          const target = await getDriver("raw").create!(output, source.virtualSize, {});
          await convertImage(source, target, {
            signal: this.signal,
            onProgress: this.engineProgress("convert"),
          });
          await output.commit();
        } finally {
          await output.discard();
        }
      } finally {
        await source.close();
      }
      this.phase("convert", "end");
      if (this.state.files.download && this.state.files.download !== work) {
        await rm(this.state.files.download, { force: true });
        this.state.files.download = undefined;
      }
    }
    this.state.done.push("working-copy");
    await this.save();
    return work;
  }

  private async clean(work: string): Promise<CleanSummary | undefined> {
    if (this.state.done.includes("clean")) return undefined;
    const clean = this.request.clean!;
    this.phase("clean", "start", clean.profile ?? clean.operations ?? "defaults");
    const meter = this.meter("clean", null);
    const summary = await cleanWorkingCopy(work, {
      profile: clean.profile,
      operations: clean.operations,
      signal: this.signal,
      onProgress: (e) => (e.done !== undefined ? meter.set(e.done, e.total) : meter.tick()),
    });
    meter.complete();
    for (const w of summary.warnings) this.message(w, "warning");
    this.phase("clean", "end", `${summary.changes} change(s)`);
    this.state.done.push("clean");
    await this.save();
    return summary;
  }

  /** Converts `source` (owned: closed here) into the destination's format and delivers it. */
  private async deliver(source: ImageSource): Promise<ProviderImage | undefined> {
    const plan = this.state.plan!;
    const dest = this.request.destination;
    const format = plan.targetFormat;
    try {
      if (dest.kind === "file") {
        const out = resolve(dest.path);
        await this.checkOutputSpace(source, out);
        this.phase("convert", "start", `${source.format} → ${format} ${out}`);
        if (format === "ova") {
          // The open source itself (a qcow2 read over HTTP Range included): no copy; closed below, not by exportOva.
          await exportOva({
            inputs: [source],
            output: out,
            target: (dest.target ?? "virtualbox") as OvaTargetName,
            name: dest.name ?? this.state.source!.name,
            signal: this.signal,
            onProgress: this.engineProgress("convert"),
          });
        } else {
          const output = await TemporaryOutputFile.create(out);
          try {
            const target = await getDriver(format).create!(
              output,
              source.virtualSize,
              createOptionsFor(format, dest.target),
            );
            await convertImage(source, target, { signal: this.signal, onProgress: this.engineProgress("convert") });
            await output.commit();
          } finally {
            await output.discard();
          }
        }
        this.phase("convert", "end");
        return undefined;
      }
      if (plan.targetAccess === "stream") {
        this.phase("convert", "start", `${source.format} → ${format}, streamed into the upload`);
        const output = new UploadStreamOutput();
        const target = await getDriver(format).create!(output, source.virtualSize, createOptionsFor(format, "cloud"));
        const converting = convertImage(source, target, {
          signal: this.signal,
          onProgress: this.engineProgress("convert"),
        }).then(
          () => output.end(),
          (e: unknown) => {
            output.fail(e as Error);
            throw e;
          },
        );
        converting.catch(() => undefined);
        const uploading = this.upload(output.stream, format === "raw" ? source.virtualSize : undefined);
        // An upload that fails stops the conversion feeding it.
        uploading.catch((e: unknown) => output.fail(e as Error));
        const [c, u] = await Promise.allSettled([converting, uploading]);
        if (c.status === "rejected") throw c.reason;
        if (u.status === "rejected") throw u.reason;
        this.phase("convert", "end");
        return u.value;
      }
      const converted = join(this.workDir, `converted.${format}`);
      this.state.files.converted = converted;
      if (!this.state.done.includes("converted")) {
        await this.save();
        this.phase("convert", "start", `${source.format} → ${format} (compact temporary file, then uploaded)`);
        const output = await TemporaryOutputFile.create(converted);
        try {
          const target = await getDriver(format).create!(output, source.virtualSize, createOptionsFor(format, "cloud"));
          await convertImage(source, target, { signal: this.signal, onProgress: this.engineProgress("convert") });
          await output.commit();
        } finally {
          await output.discard();
        }
        this.phase("convert", "end");
        this.state.done.push("converted");
        await this.save();
      }
      const size = (await stat(converted)).size;
      return await this.upload(createReadStream(converted, { highWaterMark: 2 ** 20 }), size);
    } finally {
      await source.close().catch(() => undefined);
    }
  }

  /** Removes what an earlier, unfinished upload of this job left in the destination (no duplicates). */
  private async removeStaleUploads(): Promise<void> {
    const dst = this.destination!;
    if (this.state.destination && !this.state.destination.completed) {
      this.message(`removing the unfinished upload ${this.state.destination.id} of an earlier run`);
      await dst.deleteImage(this.state.destination.id);
      this.state.destination = undefined;
      await this.save();
    }
    const name = (this.request.destination as { name: string }).name;
    // Glance filters by name itself: a large cloud's whole image list is not walked.
    const candidates =
      dst instanceof OpenStackProvider ? mapAsync(dst.glance.listImages({ name }), toProviderImage) : dst.listImages();
    for await (const image of candidates) {
      if (image.name === name && image.properties.chromogenic_job === this.state.id) {
        this.message(`removing ${image.id}, left by an earlier run of this job`);
        await dst.deleteImage(image.id);
      }
    }
  }

  private upload(
    data: AsyncIterable<Uint8Array>,
    sizeBytes: number | undefined,
    trustedHash?: { algorithm: string; value: string },
  ): Promise<ProviderImage> {
    return this.storeImage("upload", sizeBytes, (request, options) =>
      this.destination!.uploadImage({ ...request, sizeBytes }, data, { ...options, trustedHash }),
    );
  }

  /**
   * Makes the destination image through `put` (an upload, or a server-side import), with the job's bookkeeping
   * around it: leftovers of earlier runs removed first, the new record's id saved before any byte moves,
   * properties (inherited from the source, minus what describes a snapshot; then the user's), members.
   */
  private async storeImage(
    phase: "upload" | "import",
    sizeBytes: number | undefined,
    put: (request: UploadImageRequest, options: UploadOptions) => Promise<ProviderImage>,
  ): Promise<ProviderImage> {
    const dst = this.destination!;
    const dest = this.request.destination;
    if (dest.kind !== "cloud") throw new Error("upload without a destination store");
    await this.removeStaleUploads();
    const format = this.state.plan!.targetFormat;
    const inherited = Object.fromEntries(
      Object.entries(this.sourceProperties ?? {}).filter(
        ([k]) => !SNAPSHOT_ONLY_PROPERTIES.has(k) && !k.startsWith("os_glance"),
      ),
    );
    const properties: Record<string, string> = {
      ...inherited,
      ...(format === "vmdk" ? { vmware_disktype: "streamOptimized" } : {}),
      ...dest.properties,
      chromogenic_job: this.state.id,
    };
    this.state.phase = phase;
    await this.save();
    this.phase(phase, "start", `${dst.label} as "${dest.name}" (${format})`);
    const meter = this.meter(phase, sizeBytes ?? null);
    const image = await put(
      { name: dest.name, diskFormat: format, visibility: dest.visibility ?? "private", properties },
      {
        signal: this.signal,
        onProgress: (b, t) => meter.set(b, t),
        onCreated: async (id) => {
          this.state.destination = { id, completed: false };
          await this.save();
        },
      },
    );
    meter.complete();
    this.state.destination = { id: image.id, completed: true };
    if (image.hash) this.state.checksums.destination = image.hash;
    this.state.bytes.upload = image.sizeBytes ?? 0;
    await this.save();
    for (const member of dest.members ?? []) {
      if (!dst.shareImage) throw new UsageError(`${dst.label} cannot share images (--share ${member})`);
      await dst.shareImage(image.id, member);
    }
    this.phase(phase, "end", image.id);
    return image;
  }

  /**
   * With --server-side: the destination's Glance copies the image from the source region itself
   * (glance-download), so no byte passes through this machine. Undefined when the clouds cannot (then the job
   * streams, and says why).
   */
  private async serverSideCopy(): Promise<ProviderImage | undefined> {
    const src = this.state.source!;
    if (!(this.source instanceof OpenStackProvider) || !(this.destination instanceof OpenStackProvider)) {
      this.message("--server-side: only between OpenStack regions; streaming instead");
      return undefined;
    }
    const { serverSideCopyPlan, copyImageBetweenRegions } =
      await import("../providers/openstack/glance-import-provider.js");
    const from = this.source;
    const to = this.destination;
    const plan = await serverSideCopyPlan(from, to, src.id);
    if (!plan.possible) {
      this.message(`--server-side: not possible (${plan.reason}); streaming instead`);
      return undefined;
    }
    return this.storeImage("import", src.size, (request, options) =>
      copyImageBetweenRegions(from, to, src.id, request, options),
    );
  }

  private async verify(image: ProviderImage | undefined): Promise<void> {
    const src = this.state.source!;
    const plan = this.state.plan!;
    const dest = this.request.destination;
    if (image && plan.mode === "passthrough" && src.hash && image.hash) {
      if (src.hash.algorithm === image.hash.algorithm && src.hash.value !== image.hash.value) {
        throw new Error(
          `the destination's ${image.hash.algorithm} (${image.hash.value}) differs from the source's (${src.hash.value})`,
        );
      }
    }
    if (dest.kind === "file" && dest.format !== "ova") {
      // The output opens as what it claims to be, with the disk's size.
      const { source } = await openImage(resolve(dest.path), { format: dest.format });
      await source.close();
    }
  }

  // ── cleanup ──────────────────────────────────────────────────────────────────────────────────────────

  private async deleteSnapshot(): Promise<boolean> {
    const snap = this.state.snapshot;
    if (!snap || snap.deleted) return !!snap?.deleted;
    const image = snap.id ? { id: snap.id } : await this.source.getImage(snap.name);
    if (image) await this.source.deleteImage(image.id);
    snap.deleted = true;
    await this.save();
    return true;
  }

  private async removeTemporaryFiles(): Promise<void> {
    for (const f of Object.values(this.state.files)) if (f) await rm(f, { force: true });
    this.state.files = {};
    if (this.workDir !== jobDir(this.state.id)) await rm(this.workDir, { recursive: true, force: true });
    await this.save();
  }

  /** After a failure (not a cancellation): the temporary snapshot, a half-made destination image, temp files. */
  async removeLeftovers(): Promise<void> {
    if (this.state.destination && !this.state.destination.completed && this.destination) {
      await this.destination.deleteImage(this.state.destination.id).catch(() => undefined);
      this.state.destination = undefined;
    }
    if (this.state.snapshot && !this.state.snapshot.deleted) {
      await this.deleteSnapshot().catch(() => undefined);
    }
    this.state.snapshot = undefined;
    if (this.workDir) await this.removeTemporaryFiles().catch(() => undefined);
    this.state.done = [];
    this.state.bytes = { download: 0, upload: 0 };
    this.state.source = undefined;
    this.state.plan = undefined;
  }
}

function createOptionsFor(format: string, target: string | undefined): CreateOptions {
  // Glance, VMware and AWS take the streamOptimized VMDK (and it is the one that can be streamed).
  if (format === "vmdk" && target && ["cloud", "vmware", "aws"].includes(target))
    return { subformat: "streamOptimized" };
  return {};
}

async function waitReady(provider: ImageProvider, id: string, signal?: AbortSignal): Promise<ProviderImage> {
  const deadline = Date.now() + 60 * 60_000;
  for (;;) {
    const image = await provider.getImage(id);
    if (!image) throw new Error(`${provider.label}: image ${id} disappeared while being made`);
    if (image.state === "ready") return image;
    if (image.state === "failed") throw new Error(`${provider.label}: image ${id} is ${image.rawStatus}`);
    if (Date.now() > deadline) throw new Error(`${provider.label}: image ${id} still ${image.rawStatus} after 1 h`);
    if (signal?.aborted) throw new AbortedError();
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function* mapAsync<T, U>(items: AsyncIterable<T>, f: (item: T) => U): AsyncIterable<U> {
  for await (const item of items) yield f(item);
}
