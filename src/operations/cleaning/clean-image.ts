import { realpath, stat, unlink } from "node:fs/promises";
import { resolve } from "node:path";
import { AbortedError, ChromogenicError, UsageError } from "../../formats/errors.js";
import { resolveGuestPath } from "../../guest/guest-path.js";
import { openGuest } from "../../guest/guest-session.js";
import { inspectGuest } from "../../guest/inspect/inspect-guest.js";
import type { WorkListener } from "../../util/events.js";
import type { CleaningMount } from "./cleaning-context.js";
import { describeDisk } from "./describe-disk.js";
import type { CleaningChange, CleaningReport } from "./cleaning-report.js";
import { planCleaning, runCleaning } from "./run-cleaning.js";

export type { CleaningChange, CleaningReport } from "./cleaning-report.js";

export interface CleanImageOptions {
  /** virt-sysprep-style selection, e.g. "defaults,-ssh-hostkeys,user-account"; default "defaults". */
  readonly operations?: string;
  /** A built-in profile name ("default", "atmosphere") or a path to a YAML profile. */
  readonly profile?: string;
  /** Accounts the user-account operation keeps (virt-sysprep's --keep-user-accounts). */
  readonly keepUsers?: readonly string[];
  /** When given, the only accounts user-account removes (virt-sysprep's --remove-user-accounts). */
  readonly removeUsers?: readonly string[];
  /** virt-sysprep's --enable: exactly these operations (before `operations` adjusts them). */
  readonly enable?: string;
  /** Plan only: nothing in the guest changes, the image is opened read-only. */
  readonly dryRun?: boolean;
  /**
   * Change `image` itself, as virt-sysprep does. A raw image is attached directly (no copy at all): a failure
   * part-way leaves it partly cleaned, and the error says so. Another format is cleaned in a working copy
   * written back over the image under a temporary name and renamed: a failure leaves the image as it was.
   */
  readonly inPlace?: boolean;
  /** The input's format (virt-sysprep's --format); default: recognised from the file. */
  readonly format?: string;
  /** Required unless inPlace or dryRun; written under a temporary name, renamed on success. */
  readonly output?: string;
  /** Default: the input's format. */
  readonly outputFormat?: string;
  /** Where the sparse raw working copy goes (default: beside the image). */
  readonly workDir?: string;
  readonly signal?: AbortSignal;
  /**
   * The run's events (util/events.ts): phases attach, clean (a `step` per operation) and commit (with the
   * progress of writing the working copy out).
   */
  readonly onEvent?: WorkListener;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const ra = await realpath(a).catch(() => resolve(a));
  const rb = await realpath(b).catch(() => resolve(b));
  return ra === rb;
}

/**
 * Cleans an image: attach and mount its guest (read-only for a dry run), inspect it, run the selected
 * operations in their fixed order, then write the working copy to `output` (or back over the image with
 * `inPlace`). Every mount, loop device and working copy is undone on every exit path (errors and
 * cancellation through `signal` included); the output only appears, by rename, once it is complete; the
 * source image is not written unless `inPlace`.
 */
export async function cleanImage(image: string, options: CleanImageOptions): Promise<CleaningReport> {
  const dryRun = options.dryRun ?? false;
  if (options.inPlace && options.output) throw new UsageError("give either an OUTPUT or --in-place, not both");
  if (!dryRun && !options.inPlace && !options.output)
    throw new UsageError("clean needs an OUTPUT image (or --in-place to change IMAGE itself, or --dry-run)");
  const plan = await planCleaning(options);
  const st = await stat(image).catch(() => null);
  if (!st?.isFile()) throw new UsageError(`image ${image} does not exist or is not a file`);
  if (options.output && (await sameFile(options.output, image)))
    throw new UsageError(`output ${options.output} is the input image itself (use --in-place to change it)`);
  const { signal, onEvent } = options;

  let started = performance.now();
  onEvent?.({ event: "phase", phase: "attach", state: "start", detail: image });
  const session = await openGuest(image, {
    readOnly: dryRun,
    inPlace: options.inPlace,
    format: options.format,
    workDir: options.workDir,
    signal,
  });
  // Only a raw image cleaned in place is changed before the end: say what state a failure leaves it in.
  const direct = !dryRun && session.attached.rawPath === image;
  let changing = false;
  try {
    const root = session.mounted.root;
    const inspection = await inspectGuest(root);
    const mounts: CleaningMount[] = [];
    for (const m of session.mounted.mounts)
      mounts.push({ guestPath: m.guestPath, hostPath: await resolveGuestPath(root, m.guestPath), type: m.type });
    const attachMs = performance.now() - started;
    onEvent?.({ event: "phase", phase: "attach", state: "end" });

    started = performance.now();
    onEvent?.({ event: "phase", phase: "clean", state: "start", ...(dryRun ? { detail: "dry run" } : {}) });
    changing = direct;
    const run = await runCleaning(root, plan, {
      dryRun,
      inspection,
      mounts,
      disk: await describeDisk(session),
      signal,
      onOperation: (name, done, count) => {
        if (done < count) onEvent?.({ event: "step", phase: "clean", name, index: done + 1, count });
      },
    });
    if (run.deviceChanges.length) {
      // New filesystem UUIDs need the filesystems offline; the devices stay attached until the commit.
      await session.unmount();
      for (const change of run.deviceChanges) {
        if (signal?.aborted) throw new AbortedError();
        try {
          await change.apply();
        } catch (e) {
          const hint = change.ifFailed ? ` (${change.ifFailed})` : "";
          throw new DeviceChangeError(`${change.path}: ${change.detail} failed: ${commandOutput(e)}${hint}`, {
            cause: e,
          });
        }
      }
    }
    const cleanMs = performance.now() - started;
    onEvent?.({ event: "phase", phase: "clean", state: "end", detail: `${run.changes.length} change(s)` });
    if (signal?.aborted) throw new AbortedError();

    started = performance.now();
    let output: string | undefined;
    if (!dryRun) {
      output = options.inPlace ? image : options.output!;
      onEvent?.({ event: "phase", phase: "commit", state: "start", detail: output });
      await session.commit(output, options.inPlace ? undefined : options.outputFormat, {
        signal,
        // Writing the working copy out is a conversion: its progress, as this run's commit phase.
        onProgress: onEvent && ((event) => onEvent({ ...event, phase: "commit" })),
      });
      onEvent?.({ event: "phase", phase: "commit", state: "end" });
      // A cancellation that came just as the conversion back finished still wins.
      if (signal?.aborted && !options.inPlace) {
        await unlink(output).catch(() => undefined);
        throw new AbortedError();
      }
    } else await session.close();
    const commitMs = performance.now() - started;

    const d = inspection.distribution;
    return {
      image,
      ...(output && { output }),
      dryRun,
      guest: {
        distribution: d.id,
        family: d.family,
        version: d.version,
        ...(inspection.architecture !== "unknown" ? { architecture: inspection.architecture } : {}),
        ...(inspection.enaDriver !== undefined ? { ena: inspection.enaDriver } : {}),
      },
      operations: run.operations,
      changes: run.changes as CleaningChange[],
      warnings: run.warnings,
      timingsMs: { attach: Math.round(attachMs), clean: Math.round(cleanMs), commit: Math.round(commitMs) },
    };
  } catch (e) {
    if (!changing) throw e;
    const code = e instanceof ChromogenicError ? e.code : "EGUEST";
    // Running again redoes file operations harmlessly, but would give a filesystem yet another UUID.
    const advice =
      e instanceof DeviceChangeError
        ? "finish the change as said above, or restore the image from a copy"
        : "run the same clean again to finish, or restore the image from a copy";
    const state =
      `${image} was being cleaned in place (a raw image is changed directly, as virt-sysprep does): it is now ` +
      `partly cleaned. Its filesystems are unmounted cleanly as the run ends, so they stay consistent; ${advice}`;
    throw new ChromogenicError(`${(e as Error).message}\n${state}`, code, { cause: e });
  } finally {
    await session.close();
  }
}

/** A change to a device (a new UUID) failed after the files naming it were edited. */
class DeviceChangeError extends ChromogenicError {
  constructor(message: string, options: { cause: unknown }) {
    super(message, "EGUEST", options);
  }
}

/** What a failed command said (tune2fs explains itself on stdout), else the error's message. */
function commandOutput(e: unknown): string {
  const { stdout, stderr } = e as { stdout?: string; stderr?: string };
  return (
    [stderr, stdout]
      .filter((s) => s?.trim())
      .join("; ")
      .trim() || (e as Error).message
  );
}
