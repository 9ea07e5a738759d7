/**
 * What the job commands (image create, export --cloud, migrate, resume) share: their options, the request
 * they build from them, and their run through the CLI's one runner — the job id shown as soon as it exists
 * (so an interrupted job can be resumed), a line per phase in a log, Ctrl-C/SIGTERM cancelling into a
 * resumable state, and the result on stdout (a `done` event with --json, else a short summary).
 */
import { resolve } from "node:path";
import type { JobContext, JobResult } from "../../workflows/image-job.js";
import type { JobRequest } from "../../workflows/job-state.js";
import type { CommandName } from "../../util/events.js";
import { formatBytes } from "../../util/human.js";
import { describe as describeBootable } from "../../workflows/bootable-step.js";
import { runCommand } from "../run-command.js";
import { UsageError } from "../../util/errors.js";
import { requireRoot } from "../../util/require-root.js";
import { checkServiceFlags, serviceOptions, type ServiceFlags } from "../service-options.js";
import type { DoneEvent } from "../../util/events.js";

export interface WorkflowOutputFlags extends ServiceFlags {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

export function runJobCommand(
  command: CommandName,
  flags: WorkflowOutputFlags,
  job: (context: Required<Pick<JobContext, "signal" | "onEvent" | "onJobCreated">>) => Promise<JobResult>,
): Promise<void> {
  return runCommand(
    { command, json: !!flags.json, quiet: !!flags.quiet, logPhases: true, summary },
    ({ signal, onEvent, onJobCreated }) => job({ signal, onEvent, onJobCreated }),
  );
}

/**
 * Runs the job `request` describes: here, or with `--server` on a service, where the same request becomes the
 * submitted job (its clouds and paths then the service's) and its events are shown as a local run's.
 */
export async function runJobRequest(
  command: CommandName,
  flags: WorkflowOutputFlags,
  request: JobRequest,
): Promise<void> {
  checkServiceFlags(flags);
  if (flags.server !== undefined) {
    const { runServiceJob } = await import("../service-run.js");
    return runServiceJob(command, flags, request, { text: jobSummary, to: "stdout" });
  }
  const { startJob } = await import("../../workflows/image-job.js");
  return runJobCommand(command, flags, (context) => startJob(request, context));
}

/** A job's result for people, from a `done` event (a service's, or one read back). */
export function jobSummary(done: DoneEvent): string {
  return summary(done as unknown as JobResult);
}

function summary(r: JobResult): string {
  const lines = [
    `job ${r.job}: ${r.kind} done in ${r.seconds.toFixed(1)} s (${r.plan.mode}, ${r.plan.notes.join("; ")})`,
  ];
  if (r.image) {
    lines.push(
      `image ${r.image.id} "${r.image.name}" in ${r.image.cloud}: ${r.image.diskFormat ?? "kept by the cloud"}, ` +
        `${r.image.sizeBytes === undefined ? "?" : formatBytes(r.image.sizeBytes)}, ${r.image.visibility}`,
    );
  }
  if (r.output) lines.push(`output ${r.output}`);
  if (r.snapshotDeleted) lines.push("temporary snapshot deleted");
  if (r.cleaning) lines.push(`cleaned: ${r.cleaning.changes} change(s) by ${r.cleaning.operations.join(", ")}`);
  if (r.bootable) lines.push(describeBootable(r.bootable));
  return lines.join("\n");
}

/** `--property k=v` values as a record. */
export function parseProperties(list: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`--property "${item}" is not KEY=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export interface CommonJobFlags extends WorkflowOutputFlags {
  readonly clean?: string | boolean;
  readonly operations?: string;
  readonly workDir?: string;
  readonly keep?: boolean;
  readonly keepSnapshot?: boolean;
  readonly downloadFirst?: boolean;
  /** false: --no-part-cache. */
  readonly partCache?: boolean;
}

/** `--clean [PROFILE]` and `--operations LIST` as a job's cleaning request (undefined: no cleaning). */
export function cleanRequest(flags: CommonJobFlags): { profile?: string; operations?: string } | undefined {
  if (!flags.clean && !flags.operations) return undefined;
  return {
    profile: typeof flags.clean === "string" ? flags.clean : undefined,
    operations: flags.operations,
  };
}

/** What every job request takes from the shared options (see jobOptions). */
export function jobSettings(flags: CommonJobFlags) {
  return {
    clean: cleanRequest(flags),
    workDir: flags.workDir,
    keep: flags.keep,
    keepSnapshot: flags.keepSnapshot,
    downloadFirst: flags.downloadFirst,
    ...(flags.partCache === false ? { partCache: false } : {}),
  };
}

/** The options of a job whose result is a new image in a cloud (or the local store). */
export interface CloudImageFlags extends CommonJobFlags {
  readonly format?: string;
  readonly public?: boolean;
  readonly property?: string[];
  readonly share?: string[];
}

/** The new image `name` in `cloud`: private unless `--public`, with `--property` values and `--share` members. */
export function cloudDestination(flags: CloudImageFlags, cloud: string, name: string | undefined) {
  return {
    kind: "cloud" as const,
    cloud,
    name,
    format: flags.format,
    visibility: flags.public ? ("public" as const) : ("private" as const),
    properties: parseProperties(flags.property),
    members: flags.share,
  };
}

/** Adds the options every job command shares. */
export function jobOptions<T extends import("commander").Command>(command: T): T {
  command
    .option("--clean [profile]", "clean the guest (virt-sysprep-style) on one sparse raw working copy; needs root")
    .option("--operations <list>", "cleaning operations, e.g. defaults,-ssh-hostkeys (implies --clean)")
    .option("--work-dir <dir>", "where temporary data goes (default: the job's state directory)")
    .option(
      "--download-first",
      "copy the source into the work directory (resumable) before converting, instead of reading it in place",
    )
    .option(
      "--no-part-cache",
      "Eucalyptus/EC2 bundles: keep no verified parts in the work directory while downloading (they take up to " +
        "the bundle's compressed size; without them a resumed download fetches every part again)",
    )
    .option("--keep", "after a failure keep the temporary snapshot, half-made image and temporary files")
    .option("--keep-snapshot", "keep the instance's snapshot after success too")
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress");
  return serviceOptions(command);
}

export interface BootableJobFlags {
  /** A service runs the job (--server): whether it may run as root is its business, not this host's. */
  readonly server?: string;
  /** true: --bootable; false: --no-bootable (migrate); undefined: neither. */
  readonly bootable?: boolean;
  readonly xenToKvm?: boolean;
  readonly kernel?: string;
  readonly ramdisk?: string;
}

/** Adds `--bootable` and what `bootable` itself takes for a Xen guest; `negatable`: also `--no-bootable`. */
export function bootableOptions<T extends import("commander").Command>(command: T, negatable: string | false): T {
  command.option(
    "--bootable",
    "make the image boot on a PC (BIOS: KVM, VirtualBox, VMware) first, converting a Xen guest to KVM; " +
      "a disk that already boots goes unchanged (needs root)",
  );
  if (negatable) command.option("--no-bootable", negatable);
  return command
    .option("--xen-to-kvm", "convert the guest from Xen to KVM even if it does not look like one (implies --bootable)")
    .option("--kernel <file>", "an external kernel (EKI/AKI) installed into the guest (implies --bootable)")
    .option("--ramdisk <file>", "the external kernel's ramdisk (ERI/ARI)") as T;
}

/**
 * The job's bootable step from `--bootable` and its modifiers (which imply it), or `byDefault` when neither it nor
 * `--no-bootable` was given (migrate: when the source is a Xen guest). Explicitly asked, root is needed at once.
 */
export function bootableRequest(
  command: string,
  flags: BootableJobFlags,
  byDefault?: "xen-source",
): JobRequest["bootable"] {
  const modifiers = flags.xenToKvm || flags.kernel !== undefined || flags.ramdisk !== undefined;
  if (flags.ramdisk !== undefined && flags.kernel === undefined)
    throw new UsageError("--ramdisk was given without --kernel");
  if (flags.bootable === false) {
    if (modifiers) throw new UsageError("--no-bootable cannot go with --xen-to-kvm, --kernel or --ramdisk");
    return undefined;
  }
  if (!flags.bootable && !modifiers) return byDefault ? { when: byDefault } : undefined;
  if (flags.server === undefined) requireRoot(`${command} --bootable`);
  return {
    when: "always",
    ...(flags.xenToKvm ? { xenToKvm: true } : {}),
    // Saved in the job's state: a resume from another folder finds the same files.
    ...(flags.kernel !== undefined ? { kernel: resolve(flags.kernel) } : {}),
    ...(flags.ramdisk !== undefined ? { ramdisk: resolve(flags.ramdisk) } : {}),
  };
}
