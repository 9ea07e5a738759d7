/**
 * The bootable step of a job (`export --bootable`, `migrate --bootable`, and migrate's default for a Xen
 * source): the job's disk — the cleaned working copy, the local store's file, or the downloaded source — made to
 * boot on a PC by the `bootable` command's own workflow (makeBootable with the Xen → KVM step) into
 * `<work dir>/bootable.raw`, which delivery then converts out like any source. A disk that already boots is not
 * copied: delivery reads it as it is, and the job's result says so.
 *
 * Like the clean step: loaded only when a job makes a disk bootable (a job without it never loads the boot
 * and conversion layers), refused without root (it mounts the guest), recorded as done with its summary so a
 * resume neither runs it twice nor forgets what it did. makeBootable keeps its raw working disk, loop devices,
 * mounts and temporary output in a guest journal undone on every exit path (`guest cleanup` after a kill -9);
 * bootable.raw is a job file, removed with the others at the end or after a failure.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { XenConversionReport } from "../operations/conversion/convert-xen-guest.js";
import type { ReferencePolicy } from "../formats/types.js";
import { UsageError } from "../util/errors.js";
import type { WorkListener } from "../util/events.js";
import type { BootableReport } from "./bootable.js";
import type { JobRun } from "./job-run.js";
import type { BootableSummary } from "./job-state.js";
import { fetchSourceBootFiles } from "./source-kernel.js";

/** A disk of the job on this host, and its format. */
export interface JobDisk {
  readonly path: string;
  readonly format: string;
}

const OUTPUT_NAME = "bootable.raw";

/** Why the bootable step cannot run here, or undefined when it can. */
export function bootableUnavailable(): string | undefined {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return "making a disk bootable mounts its filesystems (loop devices), which needs root";
  }
  return undefined;
}

/**
 * Makes `disk` bootable, once: the disk delivery reads next — `<work dir>/bootable.raw`, or `disk` itself when
 * it already boots. A job file given as `disk` (the working copy, a download) is removed once it is replaced.
 */
export async function makeJobBootable(run: JobRun, disk: JobDisk): Promise<JobDisk> {
  if (run.state.done.includes("bootable")) {
    return run.state.files.bootable ? { path: run.state.files.bootable, format: "raw" } : disk;
  }
  const why = bootableUnavailable();
  if (why) {
    const hint = run.request.bootable?.when === "xen-source" ? " (--no-bootable copies it as it is)" : "";
    throw new UsageError(`cannot make ${run.state.source!.name} bootable: ${why}${hint}`);
  }
  const asked = run.request.bootable ?? { when: "always" as const };
  // An AMI-style source boots with the kernel its store keeps beside it: that one, unless the user gave one.
  const options = asked.kernel ? asked : { ...asked, ...(await fetchSourceBootFiles(run)) };
  const output = join(run.workDir, OUTPUT_NAME);
  await removeEarlierAttempts(run.workDir);
  run.state.files.bootable = output;
  run.state.phase = "bootable";
  await run.save();

  const summary = await bootableRaw(disk, output, {
    ...options,
    workDir: run.workDir,
    signal: run.signal,
    onEvent: run.forward(),
  });
  run.checkAborted();
  for (const w of summary.warnings) run.message(w, "warning");
  run.message(describe(summary));

  if (summary.alreadyBootable) {
    run.state.files.bootable = undefined;
    await record(run, summary);
    return disk;
  }
  await record(run, summary);
  // The disk it was made from is no longer needed: a job file (never the local store's own) goes now, and is
  // forgotten only once it is gone (a crash in between leaves it listed, for the job's end to remove).
  const files = run.state.files;
  const role = disk.path === files.work ? "work" : disk.path === files.download ? "download" : undefined;
  if (role) {
    await rm(disk.path, { force: true });
    files[role] = undefined;
    await run.save();
  }
  return { path: output, format: "raw" };
}

/** What the step takes from the user: `bootable`'s Xen → KVM options. */
export interface BootableOptions {
  readonly xenToKvm?: boolean;
  readonly kernel?: string;
  readonly ramdisk?: string;
}

export interface BootableRawRequest extends BootableOptions {
  /** Where makeBootable keeps its raw working disk. */
  readonly workDir: string;
  readonly references?: ReferencePolicy;
  readonly signal?: AbortSignal;
  readonly onEvent?: WorkListener;
}

/**
 * `disk` made bootable into the raw file `output` by makeBootable with the Xen → KVM step (converting when the
 * guest looks like a Xen guest, or when asked); nothing is written when the disk already boots.
 */
export async function bootableRaw(
  disk: { readonly path: string; readonly format?: string },
  output: string,
  request: BootableRawRequest,
): Promise<BootableSummary> {
  // Literal specifiers: the CLI's bundle carries these modules as chunks of their own.
  const [{ makeBootable }, { xenToKvmStep }] = await Promise.all([
    import("./bootable.js"),
    import("./xen-to-kvm-step.js"),
  ]);
  const xen = xenToKvmStep({
    force: request.xenToKvm,
    kernel: request.kernel,
    ramdisk: request.ramdisk,
    onEvent: request.onEvent,
  });
  const report = await makeBootable({
    input: disk.path,
    inputFormat: disk.format,
    references: request.references,
    output,
    outputFormat: "raw",
    workDir: request.workDir,
    guestEdits: xen.guestEdits,
    afterBuild: (built) => xen.afterBuild(built, request.signal),
    copyIfBootable: false,
    signal: request.signal,
    onEvent: request.onEvent,
  });
  return summarise(report, xen.report());
}

async function record(run: JobRun, summary: BootableSummary): Promise<void> {
  run.state.bootable = summary;
  run.state.done.push("bootable");
  await run.save();
}

/**
 * makeBootable's raw working disk is named after its output and its process (`.bootable.raw.chromogenic-
 * bootable-PID.raw`): one left by a run of this job that was killed is removed before the step runs again.
 * The work dir is the job's own, so nothing else matches.
 */
async function removeEarlierAttempts(workDir: string): Promise<void> {
  for (const name of await readdir(workDir)) {
    if (name.startsWith(`.${OUTPUT_NAME}.`)) await rm(join(workDir, name), { force: true });
  }
}

function summarise(report: BootableReport, xen: XenConversionReport | undefined): BootableSummary {
  const initramfs = xen?.initramfs;
  return {
    ...(report.alreadyBootable ? { alreadyBootable: report.alreadyBootable } : {}),
    ...(report.loader ? { loader: report.loader.name } : {}),
    ...(report.kernel ? { kernel: report.kernel.kernel } : {}),
    changes: report.changes.length,
    ...(xen
      ? {
          xenToKvm: {
            xenGuest: xen.xen.xen,
            changes: xen.changes.length,
            initramfsRebuilt: !!initramfs && "rebuilt" in initramfs && initramfs.rebuilt === true,
          },
        }
      : {}),
    warnings: [...report.warnings],
  };
}

/** One line for people: what the step did. */
export function describe(summary: BootableSummary): string {
  const boot = summary.alreadyBootable;
  if (boot) return `already boots (${boot.loader}: ${boot.config} names ${boot.kernel}): delivered unchanged`;
  const xen = summary.xenToKvm;
  return (
    `made bootable: ${summary.loader ?? "loader"} booting ${summary.kernel ?? "its kernel"}, ` +
    `${summary.changes} change(s) in the guest` +
    (xen
      ? `; Xen → KVM (${xen.xenGuest ? "a Xen guest" : "asked"}): ${xen.changes} change(s)` +
        (xen.initramfsRebuilt ? ", initramfs rebuilt" : "")
      : "")
  );
}
