import type { ZodType } from "zod";
import type { DistributionFamily } from "../../guest/inspect/distribution.js";
import type { CleaningContext } from "./cleaning-context.js";

/**
 * One cleaning operation, one file under `operations/` (virt-sysprep's record-per-file model): the list,
 * `--list-operations`, selection and the docs are all generated from these records.
 */
export interface CleaningOperation {
  /** Selection name, e.g. "machine-id" (virt-sysprep's names where the operation is one of theirs). */
  readonly name: string;
  /** One line: what it does (and, for a deliberate no-op, why). */
  readonly description: string;
  /** Part of `defaults`. */
  readonly defaultEnabled: boolean;
  /** Guest families it applies to; "all" for any Linux guest (it only acts on files that exist). */
  readonly families: readonly DistributionFamily[] | "all";
  /** Schema of the per-operation parameters a profile may set (e.g. user-account's keep list). */
  readonly parameters?: ZodType;
  /** Plans and (unless dry-run) makes the changes, every one through `ctx`. */
  perform(ctx: CleaningContext): Promise<void>;
}

/** Identity helper that keeps each operation file's literal well typed. */
export function defineOperation(operation: CleaningOperation): CleaningOperation {
  return operation;
}
