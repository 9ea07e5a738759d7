import type { InitramfsCheck } from "./initramfs/check-initramfs.js";
import type { InitramfsRebuildPlan } from "./initramfs/rebuild-plan.js";
import type { InitDetection } from "./init-system.js";
import type { LineChange } from "./line-changes.js";
import type { XenDetection } from "./xen-guest.js";

export type { InitramfsCheck } from "./initramfs/check-initramfs.js";
export type { InitramfsRebuildPlan } from "./initramfs/rebuild-plan.js";

/**
 * The initramfs verdict once rebuildConvertedInitramfs has run: the check of the rebuilt image, and how the
 * rebuild went. A dry run says what would run (`rebuilt: false`, `wouldRun`).
 */
export interface InitramfsOutcome extends InitramfsCheck {
  readonly rebuilt: boolean;
  readonly tool?: InitramfsRebuildPlan["tool"];
  /** Wall-clock seconds of the whole rebuild (appliance start, the tool's own run, the appliance's end). */
  readonly seconds?: number;
  /** Seconds from virt-customize's start until the tool ran, and the tool's own run, from its timestamps. */
  readonly applianceSeconds?: number;
  readonly toolSeconds?: number;
  /** The last lines the tool printed (credentials masked). */
  readonly output?: readonly string[];
  /** Dry run: the command line that would run. */
  readonly wouldRun?: string;
  /**
   * How the drivers were added: "appended" (the guest's modules appended to the image as a cpio archive, no
   * program run), "guest-tool" (the guest's initramfs tool run in the appliance).
   */
  readonly method?: "appended" | "guest-tool";
  /** The modules appended (or, in a dry run, that would be), in load order. */
  readonly modulesAdded?: readonly string[];
  /** Dry run: the bytes the appended archive would add. */
  readonly wouldAppendBytes?: number;
  /** Why appending was not done, when the guest's tool ran (or would run) instead. */
  readonly notAppended?: string;
}

/** One change a conversion made (or, in a dry run, would make), in the order they happen. */
export interface ConversionChange {
  /** The edit that made it ("fstab-uuid"). */
  readonly edit: string;
  readonly action: "edit" | "create" | "remove";
  /** The guest path as the guest sees it (guest symlinks on the way already followed inside the guest). */
  readonly path: string;
  /** One sentence: "changed line 1; commented out line 3", "copied from /srv/eki/vmlinuz (8247232 bytes)". */
  readonly detail?: string;
  /** For an edited file: each line's before and after. */
  readonly lines?: readonly LineChange[];
}

/** The kernel the converted guest boots, and with what: what a boot loader configuration needs. */
export interface BootKernel {
  /** The kernel release ("6.1.0-18-amd64"). */
  readonly version: string;
  /** Guest paths. */
  readonly kernel: string;
  readonly initramfs: string | null;
  /** "guest": the guest's own; "external": the caller's kernel, installed into /boot by this conversion. */
  readonly origin: "guest" | "external";
  /** The kernel command line for it, converted: `root=UUID=… ro console=tty0 console=ttyS0,115200 …`. */
  readonly arguments: string;
}

/** What convertXenGuest did: JSON-serialisable, the same shape for a dry run (which changes nothing). */
export interface XenConversionReport {
  readonly dryRun: boolean;
  /** Whether the guest looks like a Xen paravirtual guest, and why. */
  readonly xen: XenDetection;
  readonly init: InitDetection;
  /** Every edit in the order run; `skipped` says why one did not run or could not finish. */
  readonly edits: readonly { readonly name: string; readonly skipped?: string }[];
  readonly changes: readonly ConversionChange[];
  /** Things let pass: a file left alone because it is a FIFO, a link out of reach, too large… */
  readonly warnings: readonly string[];
  /** The kernel the guest will boot, or null when it has none for a PC (see blockers). */
  readonly boot: BootKernel | null;
  /** The check of the boot kernel's initramfs (an InitramfsOutcome once rebuildConvertedInitramfs ran). */
  readonly initramfs: InitramfsCheck | InitramfsOutcome | null;
  /** The rebuild the initramfs needs (the guest's tool, kernel, command), run by rebuildConvertedInitramfs. */
  readonly initramfsRebuild: InitramfsRebuildPlan | null;
  /**
   * What stops the guest from booting on KVM that this conversion could not fix (no kernel for a PC and none
   * given, no UUID for the root filesystem): empty when it should boot, an initramfs rebuild aside.
   */
  readonly blockers: readonly string[];
}
