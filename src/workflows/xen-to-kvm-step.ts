/**
 * The Xen → KVM conversion as a step of `bootable` (and of the workflows that make a disk bootable): the guest
 * edits (operations/conversion) run through the boot layer's GuestEdits hook while the new disk's root is
 * mounted. An initramfs that holds no virtio driver gets the guest's own virtio modules appended there and
 * then (initramfs/append-virtio.ts, no program run); when that is refused, it is rebuilt afterwards by the
 * guest's own tool inside the libguestfs appliance, on the unmounted working disk, never on the host.
 *
 * Whether to convert: always with `force` (--xen-to-kvm); otherwise when the guest's files say it is a Xen
 * guest (detectXenGuest: fstab on /dev/xvd*, a hvc0/xvc0 getty, xenblk aliases…), or when an external kernel
 * is given (an EKI/ERI-style guest has none of its own for a PC).
 */
import { UsageError } from "../util/errors.js";
import type { WorkListener } from "../util/events.js";
import type { GuestEditContext, GuestEditResult, GuestEdits } from "../operations/boot/guest-edits.js";
import { convertXenGuest, type XenConversionReport } from "../operations/conversion/convert-xen-guest.js";
import { appendVirtioModules } from "../operations/conversion/initramfs/append-virtio.js";
import { rebuildConvertedInitramfs } from "../operations/conversion/rebuild-initramfs.js";
import { detectXenGuest } from "../operations/conversion/xen-guest.js";
import { NotBootableError } from "../operations/boot/boot-errors.js";

export interface XenToKvmOptions {
  /** Convert even when the guest does not look like a Xen guest. */
  readonly force?: boolean;
  /** An external kernel and ramdisk (EKI/ERI, AKI/ARI) on this host, installed when the guest has none. */
  readonly kernel?: string;
  readonly ramdisk?: string;
  /**
   * Rebuild a Xen-only initramfs with the guest's own tool in the appliance even where the virtio modules
   * could be appended to it (the fallback, also for comparison).
   */
  readonly initramfsGuestTool?: boolean;
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

  /**
   * An initramfs-tools image that lacks virtio gets the guest's modules appended while the root is mounted
   * (append-virtio.ts: no program runs, seconds instead of minutes); when that is refused, the reason goes in
   * the report and afterBuild rebuilds it with the guest's tool in the appliance.
   */
  const appendInitramfs = async (ctx: GuestEditContext, report: XenConversionReport): Promise<XenConversionReport> => {
    const plan = report.initramfsRebuild;
    const check = report.initramfs;
    if (!plan || !check || plan.tool !== "update-initramfs" || options.initramfsGuestTool) return report;
    const result = await appendVirtioModules(
      ctx.root,
      { version: plan.version, initramfs: plan.initramfs, check },
      { dryRun: ctx.dryRun },
    );
    if (!result.appended && "refused" in result) {
      options.onEvent?.({
        event: "message",
        level: "info",
        text: `initramfs: not appending the virtio modules (${result.refused}); the guest's ${plan.tool} will rebuild it`,
      });
      return { ...report, initramfs: { ...check, rebuilt: false, notAppended: result.refused } };
    }
    const modules = result.plan.modules;
    const change = {
      edit: "initramfs-append",
      action: "edit" as const,
      path: plan.initramfs,
      detail: `${result.appended ? "appended" : "would append"} ${modules.join(", ")} and a script loading them (${result.plan.bytes} bytes)`,
    };
    options.onEvent?.({ event: "message", level: "info", text: `initramfs-append: ${change.detail}` });
    const initramfs = result.appended
      ? { ...result.check, rebuilt: true, method: "appended" as const, modulesAdded: modules, seconds: result.seconds }
      : {
          ...check,
          rebuilt: false,
          method: "appended" as const,
          modulesAdded: modules,
          wouldAppendBytes: result.plan.bytes,
        };
    return { ...report, initramfs, initramfsRebuild: null, changes: [...report.changes, change] };
  };

  const guestEdits = async (ctx: GuestEditContext): Promise<GuestEditResult | void> => {
    const detection = await detectXenGuest(ctx.root);
    if (!options.force && !options.kernel && !detection.xen) return undefined;
    let report = await convertXenGuest(ctx.root, {
      dryRun: ctx.dryRun,
      rootUuid: ctx.rootFilesystem.uuid,
      ...(options.kernel ? { kernel: options.kernel } : {}),
      ...(options.ramdisk ? { ramdisk: options.ramdisk } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    converted = report = await appendInitramfs(ctx, report);
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
