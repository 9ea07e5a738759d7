/**
 * The Xen → KVM conversion as a step of `bootable` (and of the workflows that make a disk bootable): the guest
 * edits (operations/conversion) run through the boot layer's GuestEdits hook while the new disk's root is
 * mounted, and the initramfs, when it holds no virtio driver, is rebuilt afterwards by the guest's own tool
 * inside the libguestfs appliance, on the unmounted working disk, never on the host.
 *
 * Whether to convert: always with `force` (--xen-to-kvm); otherwise when the guest's files say it is a Xen
 * guest (detectXenGuest: fstab on /dev/xvd*, a hvc0/xvc0 getty, xenblk aliases…), or when an external kernel
 * is given (an EKI/ERI-style guest has none of its own for a PC).
 */
import { UsageError } from "../util/errors.js";
import type { WorkListener } from "../util/events.js";
import type { GuestEditContext, GuestEditResult, GuestEdits } from "../operations/boot/guest-edits.js";
import { convertXenGuest, type XenConversionReport } from "../operations/conversion/convert-xen-guest.js";
import { rebuildConvertedInitramfs } from "../operations/conversion/rebuild-initramfs.js";
import { detectXenGuest } from "../operations/conversion/xen-guest.js";
import { NotBootableError } from "../operations/boot/boot-errors.js";

export interface XenToKvmOptions {
  /** Convert even when the guest does not look like a Xen guest. */
  readonly force?: boolean;
  /** An external kernel and ramdisk (EKI/ERI, AKI/ARI) on this host, installed when the guest has none. */
  readonly kernel?: string;
  readonly ramdisk?: string;
  readonly onEvent?: WorkListener;
}

export interface XenToKvmStep {
  /** The edits, for the boot layer's hook. */
  readonly guestEdits: GuestEdits;
  /** After the disk is built and unmounted: the initramfs rebuilt in the appliance when the edits planned it. */
  afterBuild(disk: { readonly path: string; readonly format: string }, signal?: AbortSignal): Promise<void>;
  /** What the conversion did (undefined when the guest was not converted). */
  report(): XenConversionReport | undefined;
}

/** The kernel arguments the boot layer writes itself: the rest of the converted command line is kept. */
const LOADER_OWNED = /^(root|ro|rw|console)(=|$)/;

export function xenToKvmStep(options: XenToKvmOptions): XenToKvmStep {
  if (options.ramdisk && !options.kernel) throw new UsageError("--ramdisk was given without --kernel");
  let converted: XenConversionReport | undefined;

  const guestEdits = async (ctx: GuestEditContext): Promise<GuestEditResult | void> => {
    const detection = await detectXenGuest(ctx.root);
    if (!options.force && !options.kernel && !detection.xen) return undefined;
    const report = await convertXenGuest(ctx.root, {
      dryRun: ctx.dryRun,
      rootUuid: ctx.rootFilesystem.uuid,
      ...(options.kernel ? { kernel: options.kernel } : {}),
      ...(options.ramdisk ? { ramdisk: options.ramdisk } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    converted = report;
    if (report.blockers.length > 0 && !ctx.dryRun) {
      throw new NotBootableError(`the Xen → KVM conversion cannot make this guest boot: ${report.blockers.join("; ")}`);
    }
    const result: GuestEditResult = {
      changes: report.changes.map((c) => ({
        path: c.path,
        action: c.action,
        detail: `${c.edit}${c.detail ? `: ${c.detail}` : ""}`,
      })),
      warnings: [...report.warnings, ...(ctx.dryRun ? report.blockers.map((b) => `would not boot: ${b}`) : [])],
      kernelArguments: (report.boot?.arguments.split(/\s+/) ?? []).filter((a) => a && !LOADER_OWNED.test(a)),
      ...(report.boot
        ? { kernel: { version: report.boot.version, kernel: report.boot.kernel, initramfs: report.boot.initramfs } }
        : {}),
    };
    return result;
  };

  return {
    guestEdits,
    async afterBuild(disk, signal) {
      if (!converted?.initramfsRebuild) return;
      converted = await rebuildConvertedInitramfs(disk.path, converted, {
        format: disk.format,
        ...(signal ? { signal } : {}),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
        // KVM on these hosts fails on real-mode code; TCG is the safe default unless the user chose otherwise.
        env: { ...process.env, LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS ?? "force_tcg" },
      });
    },
    report: () => converted,
  };
}
