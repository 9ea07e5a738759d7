/**
 * The hook through which other conversions edit the guest while the new disk's root is mounted (the Xen → KVM
 * edits: fstab and kernel command line by UUID, serial console, Xen-only aliases, an external kernel installed).
 * It runs after the filesystems are copied and grown and before the kernel is chosen and the boot loader's
 * files are written, so a kernel it installs into /boot is the one booted. In a dry run it runs too, on the
 * input mounted read-only, with `dryRun` set: it must then only say what it would change.
 */
import type { MountedFilesystem, MountedGuest } from "../../guest/mount/mount-guest.js";
import type { InstalledKernel } from "../../guest/inspect/boot-files.js";

export interface GuestEditContext {
  /** Host folder of the mounted guest root; reach every guest path through resolveGuestPath(root, path). */
  readonly root: string;
  readonly mounts: readonly MountedFilesystem[];
  /** The root filesystem as the boot loader will name it (root=UUID=…). */
  readonly rootFilesystem: { readonly type: string; readonly uuid: string };
  readonly dryRun: boolean;
  readonly signal?: AbortSignal;
}

export interface GuestEditChange {
  readonly path: string;
  readonly action: string;
  readonly detail: string;
}

export interface GuestEditResult {
  /** What was (or in a dry run would be) changed, for the report. */
  readonly changes?: readonly GuestEditChange[];
  /** Kernel arguments added after root=, ro and the consoles. */
  readonly kernelArguments?: readonly string[];
  /** The kernel to boot, when the edits installed one (in a dry run: the one they would install). */
  readonly kernel?: InstalledKernel;
  readonly warnings?: readonly string[];
}

export type GuestEdits = (context: GuestEditContext) => Promise<GuestEditResult | void>;

/** Runs `edits` (if any) on a mounted guest, telling it the root filesystem the boot loader will name. */
export async function runGuestEdits(
  edits: GuestEdits | undefined,
  mounted: MountedGuest,
  dryRun: boolean,
  signal: AbortSignal | undefined,
): Promise<GuestEditResult | void> {
  if (!edits) return undefined;
  const rootMount = mounted.mounts.find((m) => m.guestPath === "/")!;
  const uuid = mounted.devices.find((d) => d.device === rootMount.device)?.filesystem?.uuid ?? "";
  return edits({
    root: mounted.root,
    mounts: mounted.mounts,
    rootFilesystem: { type: rootMount.type, uuid },
    dryRun,
    ...(signal ? { signal } : {}),
  });
}
