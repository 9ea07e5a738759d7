/**
 * A job's state directory, `<state dir>/jobs/<id>/`: `state.json` (what was asked, the plan, the phase, ids of
 * everything made in a cloud so far, bytes done, checksums) rewritten atomically — temporary file, fsync,
 * rename — at every step, so a crash, Ctrl-C or `kill -9` always leaves a state `chromogenic resume` can
 * continue from. Temporary data of the job (downloads, the working copy) lives in its work folder, by default
 * this same directory. No credentials are ever written here: clouds are saved by name.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, readdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { UsageError } from "../formats/errors.js";
import { homedir } from "node:os";
import { stateDir } from "../guest/journal/guest-journal.js";
import { processAlive } from "../util/process-alive.js";

const HashSchema = z.object({ algorithm: z.string(), value: z.string() });

const DestinationSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("cloud"),
    cloud: z.string(),
    /** The new image's name; the source image's name when not given. */
    name: z.string().optional(),
    format: z.string().optional(),
    visibility: z.enum(["private", "public"]).optional(),
    properties: z.record(z.string(), z.string()).optional(),
    members: z.array(z.string()).optional(),
  }),
  z.object({
    kind: z.literal("file"),
    path: z.string(),
    format: z.string(),
    /** OVA preset (virtualbox, vmware, aws), or a VMDK flavour hint for --format vmdk. */
    target: z.string().optional(),
    name: z.string().optional(),
  }),
]);

export const BootableSummarySchema = z.object({
  /** The disk already booted (its loader, configuration and kernel): delivered unchanged. */
  alreadyBootable: z.object({ loader: z.string(), config: z.string(), kernel: z.string() }).optional(),
  loader: z.string().optional(),
  kernel: z.string().optional(),
  /** Files changed in the guest (the boot loader's and the Xen conversion's). */
  changes: z.number(),
  xenToKvm: z.object({ xenGuest: z.boolean(), changes: z.number(), initramfsRebuilt: z.boolean() }).optional(),
  warnings: z.array(z.string()),
});

export const JobRequestSchema = z.object({
  kind: z.enum(["image-create", "export", "migrate"]),
  source: z.object({ cloud: z.string(), image: z.string().optional(), instance: z.string().optional() }),
  destination: DestinationSchema,
  clean: z.object({ profile: z.string().optional(), operations: z.string().optional() }).optional(),
  /**
   * Make the image boot on a PC before it leaves (bootable-step.ts): "always" (--bootable), or only when the
   * source store says it is a Xen guest ("xen-source", migrate's default). Kernel and ramdisk: absolute paths.
   */
  bootable: z
    .object({
      when: z.enum(["always", "xen-source"]),
      xenToKvm: z.boolean().optional(),
      kernel: z.string().optional(),
      ramdisk: z.string().optional(),
    })
    .optional(),
  /** Where temporary data goes (default: the job's state directory). */
  workDir: z.string().optional(),
  /**
   * Copy the source into the work directory first (resumable with Range) instead of reading it where it is
   * stored: for a link that drops often, or a source read more than once.
   */
  downloadFirst: z.boolean().optional(),
  /**
   * false: a download from a store that reads an image in pieces (a bundle's parts) keeps none of them for a
   * resume, which then fetches them all again; by default they are kept in the work folder until it completes.
   */
  partCache: z.boolean().optional(),
  /** Keep cloud leftovers and temporary files after a failure (for a look, or a later resume). */
  keep: z.boolean().optional(),
  /** Keep the instance's snapshot after success too (it is then the job's result as much as the copy). */
  keepSnapshot: z.boolean().optional(),
  /** Same-format OpenStack copies: let the destination's Glance fetch the image itself (glance-download). */
  serverSide: z.boolean().optional(),
});

export const JobPlanSchema = z.object({
  mode: z.enum(["passthrough", "convert", "clean"]),
  sourceFormat: z.string(),
  targetFormat: z.string(),
  /** How the source's bytes are read: in place (local store), by positional reads, or downloaded first. */
  sourceAccess: z.enum(["local-file", "random-access", "stream", "download"]),
  /** How the result reaches its destination. */
  targetAccess: z.enum(["stream", "temporary-file", "file"]),
  temporaryBytes: z.number(),
  workDir: z.string(),
  /** The image is made bootable on a PC (bootable-step.ts) before it is delivered. */
  bootable: z.boolean().optional(),
  notes: z.array(z.string()),
});

export const JobStateSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The process running it (a resume refuses to run a job whose process is alive). */
  pid: z.number(),
  request: JobRequestSchema,
  status: z.enum(["running", "interrupted", "failed", "done"]),
  phase: z.string(),
  plan: JobPlanSchema.optional(),
  /** The temporary snapshot this job made (named before it is made, so a crash can still find it). */
  snapshot: z.object({ name: z.string(), id: z.string().optional(), deleted: z.boolean().optional() }).optional(),
  source: z
    .object({
      id: z.string(),
      name: z.string(),
      format: z.string(),
      size: z.number(),
      hash: HashSchema.optional(),
      /** The source store says it is a Xen guest (its metadata, or the store itself). */
      xenGuest: z.boolean().optional(),
      /** What a download keeps at most as verified pieces for a resume (ProviderImage.pieceBytes). */
      pieceBytes: z.number().optional(),
      /** Its bytes come only as a stream, whatever the store offers (ProviderImage.sequentialOnly). */
      sequentialOnly: z.boolean().optional(),
    })
    .optional(),
  /** The destination image record, noted before any byte is sent; `completed` once it is whole and checked. */
  destination: z.object({ id: z.string(), completed: z.boolean() }).optional(),
  /**
   * The source's external kernel and ramdisk stored in the destination (a store with `externalKernels`), by
   * role: the new image names them. Saved as each is made, so a resume does not store them twice.
   */
  bootImages: z.object({ kernel: z.string().optional(), ramdisk: z.string().optional() }).optional(),
  /** What the destination store needs to continue an interrupted upload (UploadOptions.resume), opaque here. */
  uploadResume: z.unknown().optional(),
  /** Temporary files of the job, by role. */
  files: z.object({
    download: z.string().optional(),
    work: z.string().optional(),
    converted: z.string().optional(),
    /** The disk made bootable (raw), when the bootable step wrote one. */
    bootable: z.string().optional(),
    /** The source's external kernel and ramdisk (its kernel_id/ramdisk_id), fetched for the bootable step. */
    kernel: z.string().optional(),
    ramdisk: z.string().optional(),
  }),
  /** What the bootable step did, once it is done (a resume reports it without running it again). */
  bootable: BootableSummarySchema.optional(),
  /** Steps finished, so a resume skips them. */
  done: z.array(z.string()),
  bytes: z.object({ download: z.number(), upload: z.number() }),
  checksums: z.record(z.string(), HashSchema),
  error: z.string().optional(),
  /** The failure's stable code (docs/ERRORS.md), beside its message. */
  errorCode: z.string().optional(),
  result: z.record(z.string(), z.unknown()).optional(),
});

export type JobRequest = z.infer<typeof JobRequestSchema>;
export type JobPlan = z.infer<typeof JobPlanSchema>;
export type JobState = z.infer<typeof JobStateSchema>;
export type BootableSummary = z.infer<typeof BootableSummarySchema>;

/**
 * Where jobs and the default local store live: `$CHROMOGENIC_STATE_DIR`, else the system state directory
 * (/var/lib/chromogenic) for root, else `$XDG_STATE_HOME/chromogenic` (~/.local/state/chromogenic), so a user
 * without root can run every workflow that needs none.
 */
export function workflowStateDir(): string {
  if (process.env.CHROMOGENIC_STATE_DIR || process.getuid?.() === 0) return stateDir();
  return join(process.env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "chromogenic");
}

export function jobsDir(): string {
  return join(workflowStateDir(), "jobs");
}

export function jobDir(id: string): string {
  if (!/^[a-z0-9-]{6,64}$/.test(id)) throw new UsageError(`"${id}" is not a job id`);
  return join(jobsDir(), id);
}

export async function createJob(request: JobRequest): Promise<JobState> {
  const now = new Date();
  const stamp = now.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const id = `${request.kind}-${stamp}-${randomBytes(3).toString("hex")}`;
  await mkdir(jobDir(id), { recursive: true, mode: 0o700 });
  const state: JobState = {
    version: 1,
    id,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    pid: process.pid,
    request,
    status: "running",
    phase: "planned",
    files: {},
    done: [],
    bytes: { download: 0, upload: 0 },
    checksums: {},
  };
  await saveJob(state);
  return state;
}

/** Writes the state atomically: a reader (or a resume after a crash) sees the old state or the new, never half. */
export async function saveJob(state: JobState): Promise<void> {
  state.updatedAt = new Date().toISOString();
  const dir = jobDir(state.id);
  const temp = join(dir, `.state.${process.pid}.${randomBytes(3).toString("hex")}.tmp`);
  const h = await open(temp, "w", 0o600);
  try {
    await h.writeFile(JSON.stringify(state, null, 2) + "\n");
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(temp, join(dir, "state.json"));
}

/**
 * A job's state as another process saved it — perhaps on another host, a service worker that died — validated
 * and written into this host's state directory, so that resumeJob continues the job here.
 */
export async function adoptJob(saved: unknown): Promise<JobState> {
  const parsed = JobStateSchema.safeParse(saved);
  if (!parsed.success) throw new UsageError(`the job's saved state is not valid: ${parsed.error.message}`);
  await mkdir(jobDir(parsed.data.id), { recursive: true, mode: 0o700 });
  await saveJob(parsed.data);
  return parsed.data;
}

export async function loadJob(id: string): Promise<JobState> {
  const path = join(jobDir(id), "state.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new UsageError(`no job ${id} in ${jobsDir()}`);
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`job ${id}: its state file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = JobStateSchema.safeParse(json);
  if (!parsed.success) throw new UsageError(`job ${id}: its state file is not valid: ${parsed.error.message}`);
  return parsed.data;
}

export async function listJobs(): Promise<JobState[]> {
  let names: string[];
  try {
    names = await readdir(jobsDir());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const jobs: JobState[] = [];
  for (const name of names.sort()) {
    try {
      jobs.push(await loadJob(name));
    } catch {
      // a folder being created or a foreign file: not a job to list
    }
  }
  return jobs;
}

/** Whether the process that last ran a job is still alive (then it must not be resumed twice). */
export { processAlive } from "../util/process-alive.js";

/**
 * A job's status as it stands now: one marked running whose process is gone was interrupted (killed with -9,
 * or its machine went down) and can be resumed.
 */
export function currentStatus(job: JobState): JobState["status"] {
  return job.status === "running" && !processAlive(job.pid) ? "interrupted" : job.status;
}
