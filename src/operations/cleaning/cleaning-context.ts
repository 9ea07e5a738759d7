import type { Stats } from "node:fs";
import { AbortedError } from "../../formats/errors.js";
import type { GuestInspection } from "../../guest/inspect/inspect-guest.js";
import type { CleaningDisk, DeviceChange } from "./cleaning-disk.js";
import { globToRegExp, hasWildcard } from "./guest-glob.js";
import type { EntryKind, GuestTree, TextEdit } from "./guest-tree.js";

/** A guest filesystem mounted for this run (zero-free-space trims each one). */
export interface CleaningMount {
  readonly guestPath: string;
  readonly hostPath: string;
  readonly type: string;
}

/**
 * What an operation sees: the guest tree's primitives (every change recorded under the operation's name),
 * the inspection, its parameters, and the guest's mounts. Nothing else touches the guest.
 */
export class CleaningContext {
  constructor(
    private readonly tree: GuestTree,
    readonly inspection: GuestInspection,
    /** The operation's parameters from the profile, already validated against its schema. */
    readonly params: Readonly<Record<string, unknown>>,
    readonly mounts: readonly CleaningMount[],
    private readonly onWarning: (message: string) => void,
    private readonly signal: AbortSignal | undefined,
    /** Records a change that is not a file primitive (zero-free-space). */
    readonly recordOther: (change: {
      action: "zero-free-space" | "set-uuid";
      path: string;
      detail?: string;
      bytes?: number;
    }) => void,
    /** The guest's devices (absent for a plain folder). */
    readonly disk?: CleaningDisk,
    private readonly onDeviceChange?: (change: DeviceChange) => void,
  ) {}

  /**
   * Queues a change to a block device for when every guest filesystem is unmounted (after all operations);
   * a dry run only reports it.
   */
  deferDeviceChange(change: DeviceChange): void {
    this.recordOther({ action: "set-uuid", path: change.path, detail: change.detail });
    if (!this.dryRun) this.onDeviceChange?.(change);
  }

  get dryRun(): boolean {
    return this.tree.dryRun;
  }

  get root(): string {
    return this.tree.root;
  }

  warn(message: string): void {
    this.onWarning(message);
  }

  checkAborted(): void {
    if (this.signal?.aborted) throw new AbortedError();
  }

  kind(path: string): Promise<EntryKind | null> {
    return this.tree.kind(path);
  }

  async exists(path: string): Promise<boolean> {
    return (await this.tree.kind(path)) !== null;
  }

  list(dir: string): Promise<string[]> {
    return this.tree.list(dir);
  }

  linkTarget(path: string): Promise<string | null> {
    return this.tree.linkTarget(path);
  }

  readText(path: string): Promise<string | null> {
    return this.tree.readText(path);
  }

  remove(path: string, detail?: string): Promise<void> {
    return this.tree.remove(path, detail);
  }

  emptyFolder(path: string): Promise<void> {
    return this.tree.emptyFolder(path);
  }

  truncate(path: string): Promise<void> {
    return this.tree.truncate(path);
  }

  editText(path: string, edit: (text: string) => TextEdit | null): Promise<void> {
    return this.tree.editText(path, edit);
  }

  createFile(path: string, content: string, mode: number, detail: string): Promise<void> {
    return this.tree.createFile(path, content, mode, detail);
  }

  createSymlink(path: string, target: string, detail: string): Promise<void> {
    return this.tree.createSymlink(path, target, detail);
  }

  walk(dir: string, visit: (path: string, st: Stats) => Promise<void>): Promise<void> {
    return this.tree.walk(dir, visit);
  }

  /**
   * Guest paths matching a glob (`*`, `?`, `[…]` within one component; a leading `.` is matched only by a
   * pattern component that starts with one, as in the shell), sorted. Folders on the way are listed inside
   * the guest (guest symlinks followed there); the matches themselves are not followed.
   */
  async glob(pattern: string): Promise<string[]> {
    let paths = [""];
    const parts = pattern.split("/").filter((p) => p.length > 0);
    for (const part of parts) {
      const next: string[] = [];
      for (const base of paths) {
        if (!hasWildcard(part)) {
          next.push(`${base}/${part}`);
          continue;
        }
        const re = globToRegExp(part);
        for (const name of await this.tree.list(base || "/"))
          if (re.test(name) && (part.startsWith(".") || !name.startsWith("."))) next.push(`${base}/${name}`);
      }
      paths = next;
    }
    const out: string[] = [];
    for (const p of paths) if (await this.exists(p)) out.push(p);
    return out;
  }

  /** Removes everything matching each glob. */
  async removeGlobs(patterns: readonly string[]): Promise<void> {
    for (const pattern of patterns) for (const path of await this.glob(pattern)) await this.remove(path);
  }

  /** Empties every regular file matching each glob, in place. */
  async truncateGlobs(patterns: readonly string[]): Promise<void> {
    for (const pattern of patterns) for (const path of await this.glob(pattern)) await this.truncate(path);
  }

  /**
   * Home folders: root's, every folder in /home, and the passwd homes (absolute, not `/`) of ordinary accounts
   * (uid ≥ UID_MIN) — or of every account with `includeServiceAccounts` (postgres's psql history matters, its
   * ~/.ssh may be the service's own configuration). Without duplicates, sorted.
   */
  async homes(options: { includeServiceAccounts?: boolean } = {}): Promise<string[]> {
    const homes = new Set<string>(["/root"]);
    const defs = (await this.readText("/etc/login.defs")) ?? "";
    const uidMin = Number(/^\s*UID_MIN\s+(\d+)/m.exec(defs)?.[1] ?? 1000);
    for (const line of ((await this.readText("/etc/passwd")) ?? "").split("\n")) {
      const f = line.split(":");
      const home = f[5];
      const ordinary = Number(f[2]) >= uidMin;
      if (!home || !home.startsWith("/") || home === "/" || home.includes("\n")) continue;
      if (ordinary || options.includeServiceAccounts) homes.add(home.replace(/\/+$/, ""));
    }
    for (const name of await this.list("/home"))
      if ((await this.kind(`/home/${name}`)) === "directory") homes.add(`/home/${name}`);
    return [...homes].sort();
  }
}
