/**
 * What the guest layer changes on the host, one record per change, written to the journal BEFORE the change
 * is made so that a run killed at any point leaves enough to undo it.
 */
export type JournalAction =
  /** A loop device over `file` at `offset`; `device` is filled in once losetup has named it. */
  | { readonly kind: "loop"; readonly file: string; readonly offset: number; readonly sizeLimit: number }
  /** A volume group activated over our loop devices only. */
  | { readonly kind: "lvm"; readonly volumeGroup: string; readonly devices: readonly string[] }
  /** A filesystem mounted at `target`. */
  | { readonly kind: "mount"; readonly target: string; readonly source: string }
  /** An empty directory we created (mount points); removed with rmdir only, never recursively. */
  | { readonly kind: "directory"; readonly path: string }
  /** A scratch file of ours (the raw working copy). */
  | { readonly kind: "file"; readonly path: string }
  /**
   * qemu-storage-daemon showing an image's disk read-only as a raw file at `mountpoint` (a FUSE export), its
   * pid in `pidFile`.
   */
  | { readonly kind: "export"; readonly mountpoint: string; readonly pidFile: string };

export interface JournalEntry {
  readonly id: number;
  readonly action: JournalAction;
  /** Facts learned after the change was made (the loop device's name). */
  device?: string;
  undone: boolean;
}
