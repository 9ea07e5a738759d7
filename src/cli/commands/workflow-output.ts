/**
 * How the workflow commands (image create, export --cloud, migrate, resume) talk to the user: the job id on
 * stderr as soon as it exists (so an interrupted job can be resumed), progress as a redrawn line on a
 * terminal's stderr or as JSON lines on stdout with --json (the library's WorkflowEvent schema, unchanged),
 * Ctrl-C/SIGTERM cancelling into a resumable state, and the result on stdout: one JSON line
 * `{"event":"done",…}` with --json, else a short summary.
 */
import type { JobResult } from "../../workflows/image-job.js";
import type { WorkflowEvent, WorkflowListener } from "../../workflows/workflow-events.js";
import { formatBytes, formatDuration } from "../../util/human.js";
import { cancelOnSignals } from "../interrupts.js";
import { UsageError } from "../../formats/errors.js";

export interface WorkflowOutputFlags {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

export async function runWorkflowCommand(
  flags: WorkflowOutputFlags,
  job: (context: {
    signal: AbortSignal;
    onEvent: WorkflowListener;
    onJobCreated: (id: string) => void;
  }) => Promise<JobResult>,
): Promise<void> {
  const interrupts = cancelOnSignals();
  const display = workflowDisplay(flags);
  try {
    const result = await job({
      signal: interrupts.signal,
      onEvent: display.listener,
      onJobCreated: (id) => {
        if (!flags.quiet && !flags.json) process.stderr.write(`chromogenic: job ${id}\n`);
        if (flags.json) process.stdout.write(JSON.stringify({ event: "job", job: id }) + "\n");
      },
    });
    display.close();
    if (flags.json) process.stdout.write(JSON.stringify({ event: "done", ...result }) + "\n");
    else process.stdout.write(summary(result) + "\n");
  } finally {
    display.close();
    interrupts.dispose();
  }
}

function workflowDisplay(flags: WorkflowOutputFlags): { listener: WorkflowListener; close(): void } {
  if (flags.json) {
    return { listener: (e) => process.stdout.write(JSON.stringify(e) + "\n"), close: () => undefined };
  }
  const tty = !flags.quiet && process.stderr.isTTY;
  let drawn = false;
  const endLine = () => {
    if (drawn) process.stderr.write("\n");
    drawn = false;
  };
  return {
    listener: (e: WorkflowEvent) => {
      if (flags.quiet) return;
      if (e.event === "message") {
        endLine();
        process.stderr.write(`chromogenic: ${e.level === "warning" ? "warning: " : ""}${e.text}\n`);
      } else if (e.event === "phase" && e.state === "start" && !tty) {
        process.stderr.write(`chromogenic: ${e.phase}${e.detail ? `: ${e.detail}` : ""}\n`);
      } else if (e.event === "progress" && tty) {
        process.stderr.write(`\r${progressLine(e)}\x1b[K`);
        drawn = true;
      } else if (e.event === "phase" && e.state === "end" && tty) {
        endLine();
      }
    },
    close: endLine,
  };
}

function progressLine(e: Extract<WorkflowEvent, { event: "progress" }>): string {
  if (e.total === null || e.total === 0) {
    return `${e.phase} ${e.bytes ? `${formatBytes(e.bytes)} ` : ""}${formatDuration(e.elapsed)}`;
  }
  const fraction = Math.min(1, e.bytes / e.total);
  const width = 30;
  const filled = Math.round(fraction * width);
  return (
    `${e.phase.padEnd(13)} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(fraction * 100).toFixed(1).padStart(5)}% ` +
    `${formatBytes(e.bytes)}/${formatBytes(e.total)} ${formatBytes(e.rate)}/s ETA ${formatDuration(e.eta ?? NaN)}`
  );
}

function summary(r: JobResult): string {
  const lines = [
    `job ${r.job}: ${r.kind} done in ${r.seconds.toFixed(1)} s (${r.plan.mode}, ${r.plan.notes.join("; ")})`,
  ];
  if (r.image) {
    lines.push(
      `image ${r.image.id} "${r.image.name}" in ${r.image.cloud}: ${r.image.diskFormat}, ` +
        `${r.image.sizeBytes === undefined ? "?" : formatBytes(r.image.sizeBytes)}, ${r.image.visibility}`,
    );
  }
  if (r.output) lines.push(`output ${r.output}`);
  if (r.snapshotDeleted) lines.push("temporary snapshot deleted");
  if (r.cleaning) lines.push(`cleaned: ${r.cleaning.changes} change(s) by ${r.cleaning.operations.join(", ")}`);
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
export function cloudDestination(flags: CloudImageFlags, cloud: string, name: string) {
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
  return command
    .option("--clean [profile]", "clean the guest (virt-sysprep-style) on one sparse raw working copy; needs root")
    .option("--operations <list>", "cleaning operations, e.g. defaults,-ssh-hostkeys (implies --clean)")
    .option("--work-dir <dir>", "where temporary data goes (default: the job's state directory)")
    .option(
      "--download-first",
      "copy the source into the work directory (resumable) before converting, instead of reading it in place",
    )
    .option("--keep", "after a failure keep the temporary snapshot, half-made image and temporary files")
    .option("--keep-snapshot", "keep the instance's snapshot after success too")
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress") as T;
}
