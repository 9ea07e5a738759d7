import { GuestPathError } from "../../guest/guest-path.js";
import type { Distribution } from "../../guest/inspect/distribution.js";
import type { WorkListener } from "../../util/events.js";
import type { GuestTree } from "../cleaning/guest-tree.js";
import type { BoundedFile } from "./bounded-file.js";
import type { BootKernel, ConversionChange } from "./conversion-report.js";
import type { InitramfsCheck } from "./initramfs/check-initramfs.js";
import type { InitramfsRebuildPlan } from "./initramfs/rebuild-plan.js";
import type { InitDetection } from "./init-system.js";
import { installHostFile } from "./install-host-file.js";
import type { LineChange, LinesEdit } from "./line-changes.js";

/** What the caller tells the conversion about the disk the guest will be on. */
export interface ConversionInputs {
  /**
   * The UUID each filesystem will have, by the device name the guest's fstab uses now
   * (`{"/dev/xvda1": "…", "/dev/xvda2": "…"}`).
   */
  readonly deviceUuids: Readonly<Record<string, string>>;
  /** The root filesystem's UUID (else found in deviceUuids under fstab's device for `/`). */
  readonly rootUuid?: string;
  /** An external kernel and ramdisk on the host (Eucalyptus EKI/ERI, AWS AKI/ARI). */
  readonly kernel?: string;
  readonly ramdisk?: string;
  /** The image is a bare filesystem (no partition table): Xen attached it whole, as /dev/sda1 or /dev/xvda1. */
  readonly bareFilesystem: boolean;
}

/**
 * What the edits share: the boot kernel once chosen or installed, the initramfs verdict, the blockers; and
 * the recorder of changes (the before/after lines of the edit under way ride along with its change record).
 */
export class ConversionState {
  readonly changes: ConversionChange[] = [];
  readonly warnings: string[] = [];
  readonly blockers: string[] = [];
  boot: Omit<BootKernel, "arguments"> | null = null;
  /** The caller's kernel and ramdisk while they are planned or copied (a dry run reads them from the host). */
  external: { kernel: string; ramdisk: string | null } | null = null;
  initramfs: InitramfsCheck | null = null;
  /** The initramfs rebuild planned by initramfs-modules, for rebuildConvertedInitramfs to run in the appliance. */
  rebuild: InitramfsRebuildPlan | null = null;
  /** The edit under way, which changes and warnings are recorded under. */
  edit = "";
  pendingLines: readonly LineChange[] | undefined;

  constructor(private readonly onEvent?: WorkListener) {}

  record(change: { action: string; path: string; detail?: string }): void {
    this.changes.push({
      edit: this.edit,
      action: change.action as ConversionChange["action"],
      path: change.path,
      ...(change.detail !== undefined && { detail: change.detail }),
      ...(this.pendingLines && { lines: this.pendingLines }),
    });
    this.pendingLines = undefined;
    const detail = change.detail ? `: ${change.detail}` : "";
    this.onEvent?.({ event: "message", level: "info", text: `${this.edit}: ${change.action} ${change.path}${detail}` });
  }

  warn(message: string): void {
    const line = `${this.edit}: ${message}`;
    if (this.warnings.includes(line)) return;
    this.warnings.push(line);
    this.onEvent?.({ event: "message", level: "warning", text: line });
  }
}

/**
 * What an edit sees: the guest tree's primitives (cleaning's GuestTree: every path through the guest-root
 * resolver, links never followed out of the guest, FIFOs and devices never opened, edits in place so owner,
 * mode and labels stay), the caller's inputs, the guest's init and distribution, and the shared state.
 */
export class ConversionContext {
  constructor(
    /** The guest's files: read, list, remove, create through it (edits go through editLines). */
    readonly tree: GuestTree,
    readonly inputs: ConversionInputs,
    /** The root filesystem's UUID, when the caller gave it or it could be found. */
    readonly rootUuid: string | undefined,
    readonly init: InitDetection,
    readonly distribution: Distribution,
    readonly state: ConversionState,
  ) {}

  get dryRun(): boolean {
    return this.tree.dryRun;
  }

  get root(): string {
    return this.tree.root;
  }

  warn(message: string): void {
    this.state.warn(message);
  }

  /** Something that keeps the guest from booting on KVM and that this edit cannot fix. */
  block(message: string): void {
    this.state.blockers.push(message);
    this.warn(message);
  }

  /**
   * The guest path of the file a path names once the guest's links are followed (inside the guest): CentOS's
   * /etc/grub.conf is a link to /boot/grub/grub.conf, its /etc/rc.local one to /etc/rc.d/rc.local. Null (with
   * a warning) for a path that cannot be resolved, or a link to a file the guest does not have.
   */
  async realPath(path: string): Promise<string | null> {
    let real: string;
    try {
      real = this.tree.guestPath(await this.tree.host(path, true));
    } catch (e) {
      if (!(e instanceof GuestPathError)) throw e;
      this.warn(`${e.message}; left alone`);
      return null;
    }
    if (real !== path && (await this.tree.kind(path)) === "symlink" && (await this.tree.kind(real)) === null) {
      this.warn(`${path}: is a link to ${await this.tree.linkTarget(path)}, which the guest does not have; left alone`);
      return null;
    }
    return real;
  }

  /** The distinct real files of several paths that may be links to one another, in order. */
  async realPaths(paths: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const path of paths) {
      const real = await this.realPath(path);
      if (real && !out.includes(real) && (await this.tree.kind(real)) !== null) out.push(real);
    }
    return out;
  }

  /**
   * Rewrites a guest text file (following its links inside the guest) in place; `rewrite` returns null for no
   * change. Returns whether it changed (would change) the file. A file that is not a regular one, is hard-linked
   * or too large is left alone with a warning.
   */
  async editLines(path: string, rewrite: (text: string) => LinesEdit | null): Promise<boolean> {
    const real = await this.realPath(path);
    if (real === null) return false;
    const before = this.state.changes.length;
    await this.tree.editText(real, (text) => {
      const result = rewrite(text);
      if (!result) return null;
      this.state.pendingLines = result.lines;
      return { text: result.text, detail: result.detail };
    });
    this.state.pendingLines = undefined;
    return this.state.changes.length > before;
  }

  /** Copies a host file into the guest (see install-host-file.ts); records it unless already there. */
  async install(source: BoundedFile, guestPath: string, mode: number, detail: string): Promise<void> {
    const outcome = await installHostFile(this.root, source, guestPath, mode, this.dryRun);
    if (outcome === "installed") this.state.record({ action: "create", path: guestPath, detail });
  }
}
