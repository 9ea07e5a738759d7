import { inspectGuest, type GuestInspection } from "../../guest/inspect/inspect-guest.js";
import { AbortedError } from "../../formats/errors.js";
import { CleaningContext, type CleaningMount } from "./cleaning-context.js";
import type { CleaningOperation } from "./cleaning-operation.js";
import type { CleaningDisk, DeviceChange } from "./cleaning-disk.js";
import type { CleaningChange } from "./cleaning-report.js";
import { loadProfile } from "./cleaning-profile.js";
import { UsageError } from "../../formats/errors.js";
import { applySelection, exactSelection, orderedOperations } from "./operation-selection.js";
import { GuestTree } from "./guest-tree.js";

/** What to run: operations in run order and their parameters. */
export interface CleaningPlan {
  readonly operations: readonly CleaningOperation[];
  readonly parameters: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

export interface PlanRequest {
  readonly operations?: string;
  /** virt-sysprep's --enable: exactly these operations (names only), the start `operations` then adjusts. */
  readonly enable?: string;
  readonly profile?: string;
  readonly keepUsers?: readonly string[];
  readonly removeUsers?: readonly string[];
}

/**
 * Turns options into a plan. Without a profile, the start is `enable` (exactly those operations) or the empty
 * set, and `operations` is virt-sysprep's `--operations` applied to it; with neither, "defaults". With a
 * profile, the profile's selection is the start and `operations` adjusts it (`-zero-free-space`,
 * `user-account`). `keepUsers` and `removeUsers` add to user-account's lists; as in virt-sysprep, giving
 * either while user-account is not selected is a usage error (it would silently do nothing).
 */
export async function planCleaning(request: PlanRequest): Promise<CleaningPlan> {
  if (request.enable !== undefined && request.profile)
    throw new UsageError("--enable gives the exact set of operations: leave out --profile (or use --operations)");
  const profile = request.profile ? await loadProfile(request.profile) : null;
  let selected = profile ? new Set(profile.selection) : new Set<string>();
  if (request.enable !== undefined) selected = exactSelection(request.enable);
  if (request.operations !== undefined) selected = applySelection(request.operations, selected);
  else if (!profile && request.enable === undefined) selected = applySelection("defaults");
  const parameters: Record<string, Record<string, unknown>> = { ...profile?.parameters };
  for (const [key, names, flag] of [
    ["keep", request.keepUsers, "--keep-user-accounts"],
    ["remove", request.removeUsers, "--remove-user-accounts"],
  ] as const) {
    if (!names?.length) continue;
    if (!selected.has("user-account"))
      throw new UsageError(`${flag} was given, but the user-account operation is not selected`);
    const before = (parameters["user-account"]?.[key] as string[] | undefined) ?? [];
    parameters["user-account"] = { ...parameters["user-account"], [key]: [...before, ...names] };
  }
  return { operations: orderedOperations(selected), parameters };
}

export interface RunCleaningOptions {
  readonly dryRun: boolean;
  /** The guest's inspection (inspected here when not given). */
  readonly inspection?: GuestInspection;
  /** The guest's mounted filesystems (empty for a plain folder). */
  readonly mounts?: readonly CleaningMount[];
  /** The guest's devices, for operations on them (fs-uuids); absent for a plain folder. */
  readonly disk?: CleaningDisk;
  readonly signal?: AbortSignal;
  readonly onOperation?: (name: string, done: number, total: number) => void;
}

export interface CleaningRun {
  readonly inspection: GuestInspection;
  readonly operations: readonly { name: string; skipped?: string }[];
  readonly changes: readonly CleaningChange[];
  readonly warnings: readonly string[];
  /** Changes to block devices the operations asked for, to make once the guest is unmounted (none in a dry run). */
  readonly deviceChanges: readonly DeviceChange[];
}

/**
 * Runs a plan on a guest tree at `root` (a mounted guest, or any folder laid out like one: the tests use
 * folders). Operations run one after another in plan order; family applicability comes from the inspection.
 */
export async function runCleaning(root: string, plan: CleaningPlan, options: RunCleaningOptions): Promise<CleaningRun> {
  const inspection = options.inspection ?? (await inspectGuest(root));
  const family = inspection.distribution.family;
  const changes: CleaningChange[] = [];
  const warnings: string[] = [];
  const operations: { name: string; skipped?: string }[] = [];
  const deviceChanges: DeviceChange[] = [];
  let current = "";
  const warned = new Set<string>();
  const tree = new GuestTree(
    root,
    options.dryRun,
    (c) => changes.push({ operation: current, ...c }),
    // One hostile path (a symlink loop under a home) would otherwise be reported by every operation that looks there.
    (m) => {
      if (warned.has(m)) return;
      warned.add(m);
      warnings.push(`${current}: ${m}`);
    },
  );
  for (const [i, op] of plan.operations.entries()) {
    if (options.signal?.aborted) throw new AbortedError();
    options.onOperation?.(op.name, i, plan.operations.length);
    if (op.families !== "all" && !op.families.includes(family)) {
      operations.push({ name: op.name, skipped: `not for family ${family}` });
      continue;
    }
    current = op.name;
    const ctx = new CleaningContext(
      tree,
      inspection,
      plan.parameters[op.name] ?? {},
      options.mounts ?? [],
      (m) => warnings.push(`${op.name}: ${m}`),
      options.signal,
      (c) => changes.push({ operation: op.name, ...c }),
      options.disk,
      (c) => deviceChanges.push(c),
    );
    await op.perform(ctx);
    operations.push({ name: op.name });
  }
  options.onOperation?.("", plan.operations.length, plan.operations.length);
  return { inspection, operations, changes, warnings, deviceChanges };
}
