import type { ConversionContext } from "./conversion-context.js";

/**
 * One Xen → KVM guest edit, one file under `edits/` (cleaning's record-per-file model): the list, selection
 * and the report are made from these records.
 */
export interface ConversionEdit {
  /** Selection and report name, e.g. "fstab-uuid". */
  readonly name: string;
  /** One line: what it does. */
  readonly description: string;
  /** Part of the default set (every edit is; a caller may leave some out). */
  readonly defaultEnabled: boolean;
  /**
   * Plans and (unless dry-run) makes the changes, every one through `ctx`. Returns why it did not apply
   * ("the guest's init is unknown"), or nothing.
   */
  perform(ctx: ConversionContext): Promise<string | void>;
}

/** Identity helper that keeps each edit file's literal well typed. */
export function defineEdit(edit: ConversionEdit): ConversionEdit {
  return edit;
}
