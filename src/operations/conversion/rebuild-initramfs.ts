/**
 * Rebuilds a converted guest's initramfs with its own tool (update-initramfs, dracut, mkinitrd), inside the
 * libguestfs appliance (`virt-customize --run-command`), never on the host: the tool is the guest's program, and
 * a hostile image's program run in a chroot on the host would own the host. In the appliance it sees only the
 * guest's disk (its links resolve inside the guest), no network, and nothing of the host's devices or files.
 *
 * Why the appliance rather than a qemu VM of our own: virt-customize already does what such a VM would need
 * (mount the guest's filesystems by its fstab, bind /dev, /proc and /sys into it, run one command, sync) with a
 * kernel and userland from the host's packages, where our own VM would need a kernel for it plus an init we
 * write and a way to read the result back. Booting the guest's own kernel instead is no faster under TCG (a
 * full guest boot to a shell is tens of seconds too) and a Xen guest's kernel may not have the drivers for the
 * VM's disk, which is the very thing being fixed.
 *
 * Measured here (2 cores shared with other jobs, TCG, the Xen-only-initramfs test guest: Debian 12,
 * initramfs-tools MODULES=list, zstd): 75 s in all on a quiet moment, 21 s until the tool ran (appliance start
 * plus virt-customize's inspection) and 54 s update-initramfs itself; with three other TCG VMs running, 185 s
 * (40 s + 144 s). The bare appliance launch (`guestfish --ro -a DISK run`) took 16 s and launch plus
 * inspection and mounts (`-i`) 19 s, so inspection is about 3 s. The tool's own run dominates and would be the
 * same in any VM. A VM of our own with the host's kernel and an init of ours is the appliance again, saving at
 * most those 3 s and guestfsd's start; booting the guest's own kernel costs a full boot (20 s to the login
 * prompt for this guest once rebuilt) and, before the rebuild, cannot reach a virtio disk at all.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGuest } from "../../guest/guest-session.js";
import { readGuestText } from "../../guest/guest-files.js";
import { AbortedError } from "../../formats/errors.js";
import { ChromogenicError } from "../../util/errors.js";
import type { WorkListener } from "../../util/events.js";
import { MAX_RAMDISK_BYTES } from "./boot-kernels.js";
import { openGuestFile } from "./bounded-file.js";
import type { InitramfsOutcome, XenConversionReport } from "./conversion-report.js";
import { checkInitramfs, type InitramfsCheck } from "./initramfs/check-initramfs.js";
import { shellLine, type InitramfsRebuildPlan } from "./initramfs/rebuild-plan.js";

/** Default time limit for the whole virt-customize run: a TCG appliance on a busy 2-core host takes minutes. */
export const DEFAULT_REBUILD_TIMEOUT_MS = 15 * 60_000;

/** How much of virt-customize's output is kept (its last bytes): enough for the tool's errors. */
const MAX_OUTPUT_CHARS = 64 * 1024;
/** How many of its last lines go into the report. */
const REPORT_LINES = 20;

/** Rebuilding the initramfs in the appliance failed, ran out of time, or left it without virtio. */
export class InitramfsRebuildError extends ChromogenicError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "EGUEST", options);
  }
}

export interface RebuildInitramfsOptions {
  /** The disk's format, as virt-customize's --format takes it ("raw", "qcow2"). */
  readonly format: string;
  /** Plan only: the report says what would run. */
  readonly dryRun?: boolean;
  /** Limit for the virt-customize run (default DEFAULT_REBUILD_TIMEOUT_MS); past it, it is killed. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /**
   * The environment virt-customize runs in (default: this process's). LIBGUESTFS_BACKEND defaults to
   * "direct"; on hosts whose /dev/kvm does not work, LIBGUESTFS_BACKEND_SETTINGS=force_tcg is the caller's.
   */
  readonly env?: NodeJS.ProcessEnv;
  readonly onEvent?: WorkListener;
}

/** Anything that looks like a secret in a line of output (KEY=value, password: value), masked. */
export function maskCredentials(line: string): string {
  return line.replace(
    /\b([A-Za-z_]*(?:pass(?:word|wd)?|secret|token|credential|api[_-]?key|private[_-]?key)[A-Za-z_]*)(\s*[=:]\s*)\S+/gi,
    "$1$2***",
  );
}

/**
 * The virt-customize arguments for a plan: the working disk, no network, the one command, then (libguestfs
 * calls, run in command-line order after it) the machine ID and random seeds it filled in put back as they were.
 */
export function virtCustomizeArgs(disk: string, format: string, plan: InitramfsRebuildPlan): string[] {
  return [
    "--format",
    format,
    "-a",
    disk,
    "--no-network",
    "--run-command",
    shellLine(plan.command),
    ...plan.restore.truncate.flatMap((p) => ["--truncate", p]),
    ...plan.restore.remove.flatMap((p) => ["--delete", p]),
  ];
}

interface ApplianceRun {
  readonly seconds: number;
  readonly output: string;
}

/** Runs virt-customize, killing its whole process group (qemu included) on the time limit or the signal. */
async function runVirtCustomize(args: readonly string[], options: RebuildInitramfsOptions): Promise<ApplianceRun> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REBUILD_TIMEOUT_MS;
  const env = { ...(options.env ?? process.env) };
  env.LIBGUESTFS_BACKEND ??= "direct";
  // libguestfs's temporary and socket folders in one folder of ours, removed however the run ends (a killed
  // virt-customize cannot remove its own); its appliance cache stays where it was (it takes a minute to build).
  env.LIBGUESTFS_CACHEDIR ??= env.TMPDIR ?? "/var/tmp";
  const scratchDir = await mkdtemp(join(tmpdir(), "chromogenic-guestfs-"));
  env.TMPDIR = scratchDir;
  env.XDG_RUNTIME_DIR = scratchDir;
  const started = Date.now();
  const child = spawn("virt-customize", args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString("utf8")).slice(-MAX_OUTPUT_CHARS);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let stopped: "timeout" | "aborted" | null = null;
  const stop = (why: "timeout" | "aborted") => {
    if (stopped || child.exitCode !== null) return;
    stopped = why;
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      child.kill("SIGKILL");
    }
  };
  const timer = setTimeout(() => stop("timeout"), timeoutMs);
  const onAbort = () => stop("aborted");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          new InitramfsRebuildError(
            e.code === "ENOENT"
              ? "rebuilding an initramfs needs virt-customize (Debian package libguestfs-tools)"
              : `virt-customize could not start: ${e.message}`,
          ),
        ),
      );
      child.once("close", resolve);
    });
    const seconds = (Date.now() - started) / 1000;
    if (stopped === "aborted") throw new AbortedError();
    if (stopped === "timeout")
      throw new InitramfsRebuildError(
        `rebuilding the initramfs in the libguestfs appliance ran past its time limit of ${timeoutMs / 1000} s and was stopped; the working disk may be half-changed${tail(output)}`,
      );
    if (code !== 0) throw new InitramfsRebuildError(`virt-customize ${args.join(" ")} exited ${code}${tail(output)}`);
    return { seconds, output };
  } finally {
    clearTimeout(timer);
    await rm(scratchDir, { recursive: true, force: true });
    options.signal?.removeEventListener("abort", onAbort);
  }
}

function lastLines(output: string): string[] {
  return output
    .split("\n")
    .filter((l) => l.trim())
    .slice(-REPORT_LINES)
    .map(maskCredentials);
}

function tail(output: string): string {
  const lines = lastLines(output);
  return lines.length ? `:\n${lines.join("\n")}` : "";
}

/**
 * virt-customize's own timestamps ("[  12.3] Running: …", "[  40.1] Finishing off"): seconds until the tool
 * ran (the appliance's start and the guest's inspection) and the tool's own run. Null when not printed.
 */
export function splitTimings(output: string): { applianceSeconds: number; toolSeconds: number } | null {
  const at = (re: RegExp) => {
    const m = re.exec(output);
    return m ? Number(m[1]) : null;
  };
  const running = at(/^\[\s*([\d.]+)\] Running: /m);
  const finishing = at(/^\[\s*([\d.]+)\] Finishing off/m);
  if (running === null || finishing === null) return null;
  return { applianceSeconds: running, toolSeconds: Math.round((finishing - running) * 10) / 10 };
}

/** Checks the initramfs a plan names, reading the disk (mounted read-only) with our own reader. */
async function checkRebuilt(disk: string, format: string, plan: InitramfsRebuildPlan): Promise<InitramfsCheck> {
  const session = await openGuest(disk, { readOnly: true, format });
  try {
    const root = session.mounted.root;
    return await checkInitramfs({
      version: plan.version,
      guestPath: plan.initramfs,
      open: () => openGuestFile(root, plan.initramfs, MAX_RAMDISK_BYTES),
      modulesBuiltin: await readGuestText(root, `/lib/modules/${plan.version}/modules.builtin`),
      config: await readGuestText(root, `/boot/config-${plan.version}`),
    });
  } finally {
    await session.close();
  }
}

/**
 * The step after convertXenGuest, once the guest's disk is no longer mounted on the host (the appliance opens
 * it itself): runs the rebuild the conversion planned (`report.initramfsRebuild`) inside the libguestfs
 * appliance on `disk` — the working disk, never the user's input — then reads the new initramfs back and checks
 * it. Returns the report with `initramfs` replaced by the check of the rebuilt image plus how the rebuild went
 * (`rebuilt`, `tool`, `seconds`); a report with nothing to rebuild comes back as it was.
 *
 * Throws InitramfsRebuildError when virt-customize fails or runs past the time limit (its last lines in the
 * message, credentials masked), and when the rebuilt initramfs still lacks a virtio boot driver (named).
 */
export async function rebuildConvertedInitramfs(
  disk: string,
  report: XenConversionReport,
  options: RebuildInitramfsOptions,
): Promise<XenConversionReport> {
  const plan = report.initramfsRebuild;
  if (!plan || !report.initramfs) return report;
  const args = virtCustomizeArgs(disk, options.format, plan);
  const wouldRun = `virt-customize ${args.map((a) => (/^[\w./=+:-]+$/.test(a) ? a : `'${a}'`)).join(" ")}`;
  if (options.dryRun ?? report.dryRun)
    return {
      ...report,
      initramfs: { ...report.initramfs, rebuilt: false, method: "guest-tool", tool: plan.tool, wouldRun },
    };
  if (options.signal?.aborted) throw new AbortedError();
  options.onEvent?.({ event: "message", level: "info", text: `initramfs: running ${wouldRun}` });
  const run = await runVirtCustomize(args, options);
  const check = await checkRebuilt(disk, options.format, plan);
  if (check.verdict !== "ok")
    throw new InitramfsRebuildError(
      `${plan.tool} ran in the libguestfs appliance, but ${check.reason}${tail(run.output)}`,
    );
  const outcome: InitramfsOutcome = {
    ...check,
    ...("notAppended" in report.initramfs && { notAppended: report.initramfs.notAppended }),
    rebuilt: true,
    method: "guest-tool",
    tool: plan.tool,
    seconds: Math.round(run.seconds * 10) / 10,
    ...splitTimings(run.output),
    output: lastLines(run.output),
  };
  options.onEvent?.({
    event: "message",
    level: "info",
    text: `initramfs: rebuilt ${plan.initramfs} with ${plan.tool} in ${outcome.seconds} s; ${check.reason}`,
  });
  return { ...report, initramfs: outcome };
}
