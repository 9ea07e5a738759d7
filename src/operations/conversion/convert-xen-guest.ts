import { AbortedError, UsageError } from "../../formats/errors.js";
import { readGuestText } from "../../guest/guest-files.js";
import { detectDistribution } from "../../guest/inspect/distribution.js";
import type { WorkListener } from "../../util/events.js";
import { GuestTree } from "../cleaning/guest-tree.js";
import { bootArguments } from "./boot-arguments.js";
import { MAX_RAMDISK_BYTES, readExternalKernel } from "./boot-kernels.js";
import { openHostFile } from "./bounded-file.js";
import { ConversionContext, ConversionState } from "./conversion-context.js";
import type { XenConversionReport } from "./conversion-report.js";
import { selectEdits } from "./edit-registry.js";
import { fstabRootDevice } from "./fstab-lines.js";
import { detectInitSystem } from "./init-system.js";
import { detectXenGuest } from "./xen-guest.js";

export type { XenConversionReport } from "./conversion-report.js";

export interface ConvertXenGuestOptions {
  /** Plan only: the report of what would change, nothing written. */
  readonly dryRun?: boolean;
  /**
   * The UUID each filesystem will have on the converted disk, by the device name the guest uses now
   * (`{ "/dev/xvda1": "0b5c…" }`). Entries for devices not named here that will not exist (Xen disks) are
   * disabled.
   */
  readonly deviceUuids?: Readonly<Record<string, string>>;
  /** The root filesystem's UUID, when not in deviceUuids under the device fstab mounts at `/`. */
  readonly rootUuid?: string;
  /** An external kernel (and its ramdisk) on the host, installed when the guest has no kernel for a PC. */
  readonly kernel?: string;
  readonly ramdisk?: string;
  /** The image is a bare filesystem (no partition table); `/dev/sda1` in fstab is then Xen evidence. */
  readonly bareFilesystem?: boolean;
  /** The edits to run, by name (CONVERSION_EDITS); default all. */
  readonly edits?: readonly string[];
  readonly signal?: AbortSignal;
  /** A `message` event per change (info) and per warning, as they happen. */
  readonly onEvent?: WorkListener;
  /** Called before each edit (and once with done === count at the end), like cleaning's onOperation. */
  readonly onEdit?: (name: string, done: number, count: number) => void;
}

/** A filesystem UUID (ext, XFS, btrfs: 36 characters; FAT: 9) — it is written into guest files, so nothing else. */
const UUID = /^[0-9A-Fa-f]{4,8}(?:-[0-9A-Fa-f]{4,12}){1,4}$/;

function checkUuid(uuid: string, what: string): void {
  if (!UUID.test(uuid)) throw new UsageError(`${what}: "${uuid}" is not a filesystem UUID`);
}

/** Refuses bad caller input before anything in the guest is looked at or changed. */
async function checkOptions(options: ConvertXenGuestOptions): Promise<void> {
  if (options.rootUuid !== undefined) checkUuid(options.rootUuid, "root UUID");
  for (const [device, uuid] of Object.entries(options.deviceUuids ?? {})) {
    if (!device.startsWith("/dev/") || /\s/.test(device))
      throw new UsageError(`device UUIDs: "${device}" is not a device path (/dev/…)`);
    checkUuid(uuid, `UUID for ${device}`);
  }
  if (options.ramdisk && !options.kernel) throw new UsageError("a ramdisk was given without a kernel");
  if (options.kernel) await readExternalKernel(options.kernel);
  if (options.ramdisk) await (await openHostFile(options.ramdisk, "ramdisk", MAX_RAMDISK_BYTES)).handle.close();
}

/**
 * Converts a Xen paravirtual guest, mounted (or laid out) at `root`, to boot on KVM and other PCs: runs the
 * selected edits in order (edit-registry.ts) through the guest tree, so every guest path is resolved inside the
 * guest, FIFOs and devices are never opened and files are edited in place. No guest program runs. The guest
 * is converted whether or not it looks like a Xen guest (the caller decides, from `report.xen`, whether to
 * call); each edit only touches what is Xen-specific, so a second run changes nothing.
 *
 * Throws a UsageError for bad options (an unknown edit, a malformed UUID, an external kernel that is not an
 * x86 bzImage) before anything is changed; a guest file that cannot be edited safely is a warning in the
 * report, and what keeps the guest from booting is in `report.blockers`.
 */
export async function convertXenGuest(
  root: string,
  options: ConvertXenGuestOptions = {},
): Promise<XenConversionReport> {
  const dryRun = options.dryRun ?? false;
  const edits = selectEdits(options.edits);
  await checkOptions(options);
  const bareFilesystem = options.bareFilesystem ?? false;
  const deviceUuids = options.deviceUuids ?? {};
  const xen = await detectXenGuest(root, { bareFilesystem });
  const init = await detectInitSystem(root);
  const distribution = await detectDistribution(root);
  const fstab = await readGuestText(root, "/etc/fstab");
  const rootDevice = fstab === null ? null : fstabRootDevice(fstab);
  const rootUuid = options.rootUuid ?? (rootDevice === null ? undefined : deviceUuids[rootDevice]);

  const state = new ConversionState(options.onEvent);
  const tree = new GuestTree(
    root,
    dryRun,
    (change) => state.record(change),
    (message) => state.warn(message),
  );
  const ctx = new ConversionContext(
    tree,
    { deviceUuids, rootUuid, kernel: options.kernel, ramdisk: options.ramdisk, bareFilesystem },
    rootUuid,
    init,
    distribution,
    state,
  );
  const outcomes: { name: string; skipped?: string }[] = [];
  for (const [i, edit] of edits.entries()) {
    if (options.signal?.aborted) throw new AbortedError();
    options.onEdit?.(edit.name, i, edits.length);
    state.edit = edit.name;
    const skipped = await edit.perform(ctx);
    outcomes.push(skipped ? { name: edit.name, skipped } : { name: edit.name });
  }
  options.onEdit?.("", edits.length, edits.length);
  state.edit = "boot";
  const boot = state.boot && {
    ...state.boot,
    arguments: await bootArguments((path) => ctx.tree.readText(path), state.boot.version, rootUuid),
  };
  return {
    dryRun,
    xen,
    init,
    edits: outcomes,
    changes: state.changes,
    warnings: state.warnings,
    boot,
    initramfs: state.initramfs,
    initramfsRebuild: state.rebuild,
    blockers: state.blockers,
  };
}
