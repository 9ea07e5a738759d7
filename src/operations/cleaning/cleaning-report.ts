/** What a cleaning run did (or, in a dry run, would do): one record per change, in the order they happen. */
export type CleaningAction = "remove" | "truncate" | "edit" | "create" | "zero-free-space" | "set-uuid";

export interface CleaningChange {
  readonly operation: string;
  readonly action: CleaningAction;
  /** The guest path as the guest sees it (guest symlinks on the way already followed inside the guest). */
  readonly path: string;
  /** e.g. "removed 3 lines (## Atmosphere System … ## End Atmosphere System)". */
  readonly detail?: string;
  /** Bytes freed or emptied, when known (allocated bytes, so a sparse 100 GiB log counts what it really held). */
  readonly bytes?: number;
}

export interface CleaningReport {
  readonly image: string;
  readonly output?: string;
  readonly dryRun: boolean;
  readonly guest: {
    distribution: string;
    family: string;
    version: string;
    /** In Glance's words, from its programs' ELF headers (absent when none could be read). */
    architecture?: string;
    /** Whether its newest kernel has AWS's ENA network driver (absent: no kernel in /boot to tell). */
    ena?: boolean;
  };
  /** Every selected operation in the order run; `skipped` says why one did not run (e.g. "not for family redhat"). */
  readonly operations: readonly { name: string; skipped?: string }[];
  readonly changes: readonly CleaningChange[];
  readonly warnings: readonly string[];
  readonly timingsMs: { attach: number; clean: number; commit: number };
}
