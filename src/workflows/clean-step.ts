/**
 * The cleaning step of a workflow: `cleanImage(workingCopy, { inPlace: true })` from the operations layer
 * (src/operations/cleaning/clean-image.ts), on the job's one sparse raw working copy. Loaded when a job asks
 * for cleaning, so a job without --clean never needs root or the guest tools. Cleaning mounts the guest's
 * filesystems, which needs root: `cleaningUnavailable()` says why it cannot run before a job is planned.
 */
import type { WorkListener } from "../util/events.js";
import { UsageError } from "../util/errors.js";
import type { GuestFacts } from "../providers/provider.js";

export interface CleanRequest {
  readonly profile?: string;
  readonly operations?: string;
  readonly signal?: AbortSignal;
  /** The cleaning's events (its phases, a step per operation, the progress of writing out). */
  readonly onEvent?: WorkListener;
}

export interface CleanSummary {
  readonly changes: number;
  /** What the cleaning's inspection of the guest found that a destination store may need told. */
  readonly guest: { architecture?: KnownArchitecture; ena?: boolean };
  readonly operations: readonly string[];
  readonly warnings: readonly string[];
}

interface CleaningModule {
  cleanImage(
    image: string,
    options: {
      profile?: string;
      operations?: string;
      inPlace?: boolean;
      signal?: AbortSignal;
      onEvent?: WorkListener;
    },
  ): Promise<{
    changes: readonly unknown[];
    operations: readonly { name: string; skipped?: string }[];
    warnings: readonly string[];
    guest: { architecture?: string; ena?: boolean };
  }>;
}

/** Why cleaning cannot run here, or undefined when it can. */
export function cleaningUnavailable(): string | undefined {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return "cleaning mounts the guest's filesystems (loop devices), which needs root";
  }
  return undefined;
}

export async function cleanWorkingCopy(rawImage: string, request: CleanRequest): Promise<CleanSummary> {
  const why = cleaningUnavailable();
  if (why) throw new UsageError(`cannot clean ${rawImage}: ${why}`);
  // Loaded on demand: a job without --clean never loads the cleaning operations. A literal specifier, so the
  // CLI's bundle (scripts/bundle-cli.mjs) carries the module as a chunk of its own.
  const cleaning: CleaningModule = await import("../operations/cleaning/clean-image.js");
  const report = await cleaning.cleanImage(rawImage, {
    profile: request.profile,
    operations: request.operations,
    inPlace: true,
    signal: request.signal,
    onEvent: request.onEvent,
  });
  const { architecture, ena } = report.guest;
  return {
    changes: report.changes.length,
    guest: {
      ...(isGuestArchitecture(architecture) ? { architecture } : {}),
      ...(ena !== undefined ? { ena } : {}),
    },
    operations: report.operations.filter((o) => !o.skipped).map((o) => o.name),
    warnings: report.warnings,
  };
}

type KnownArchitecture = Exclude<GuestFacts["architecture"], "unknown" | undefined>;

function isGuestArchitecture(value: string | undefined): value is KnownArchitecture {
  return value === "x86_64" || value === "i686" || value === "aarch64";
}
