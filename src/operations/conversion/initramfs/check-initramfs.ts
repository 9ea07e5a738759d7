import { CorruptImageError } from "../../../formats/errors.js";
import { ChromogenicError } from "../../../util/errors.js";
import type { BoundedFile } from "../bounded-file.js";
import {
  builtinFromConfig,
  driverPresence,
  moduleName,
  parseModulesBuiltin,
  VIRTIO_BOOT_DRIVERS,
  type DriverPresence,
} from "./boot-drivers.js";
import { scanInitramfs, type InitramfsScan } from "./scan-initramfs.js";

/** Whether the initramfs of the kernel the guest boots can find a disk on virtio. */
export interface InitramfsCheck {
  readonly version: string;
  /** The guest path checked (null: the kernel has none). */
  readonly initramfs: string | null;
  /**
   * "ok": it can; "must-rebuild": it cannot (the reason says which driver is missing) and the guest's own
   * initramfs tool must rebuild it, inside a VM; "unknown": we could not tell (the reason says why).
   */
  readonly verdict: "ok" | "must-rebuild" | "unknown";
  readonly reason: string;
  /** The boot drivers looked for: a module in the initramfs, built into the kernel, missing, or unknown. */
  readonly drivers: Readonly<Record<string, DriverPresence>>;
  /** What the image is made of ("cpio", "zstd"), when read. */
  readonly parts?: readonly string[];
  readonly entries?: number;
}

export interface InitramfsToCheck {
  /** The kernel release. */
  readonly version: string;
  /** Where the initramfs is (will be) in the guest, for the report; null when the kernel has none. */
  readonly guestPath: string | null;
  /** Opens the image (the guest's file, or the caller's host file before it is copied in). */
  readonly open: () => Promise<BoundedFile>;
  /** The kernel's modules.builtin (the guest's /lib/modules/V/modules.builtin) and build configuration. */
  readonly modulesBuiltin: string | null;
  readonly config: string | null;
}

function union(sets: readonly (Set<string> | null)[]): Set<string> | null {
  const known = sets.filter((s): s is Set<string> => s !== null);
  return known.length ? new Set(known.flatMap((s) => [...s])) : null;
}

/**
 * Whether a kernel's initramfs lets it find its root disk on virtio: virtio_blk and virtio_pci each a module
 * inside the image, or built into the kernel. Reads the image itself (never runs a guest tool); what cannot be
 * read is "unknown" with the reason, what the kernel could not unpack either is "must-rebuild".
 */
export async function checkInitramfs(input: InitramfsToCheck): Promise<InitramfsCheck> {
  const { version, guestPath } = input;
  const modules = new Set<string>();
  let insideBuiltin: Set<string> | null = null;
  let scan: InitramfsScan | null = null;
  if (guestPath !== null) {
    try {
      const file = await input.open();
      try {
        scan = await scanInitramfs(file, {
          visit: (entry) => {
            const name = moduleName(entry.name);
            if (name) modules.add(name);
            return entry.name.endsWith("/modules.builtin");
          },
          captured: (_entry, data) => {
            insideBuiltin = union([insideBuiltin, parseModulesBuiltin(data.toString("latin1"))]);
          },
        });
      } finally {
        await file.handle.close();
      }
    } catch (e) {
      if (!(e instanceof ChromogenicError)) throw e;
      // The kernel could not unpack a corrupt image either; an image we could not open or decompress here
      // may still be fine.
      const verdict = e instanceof CorruptImageError ? "must-rebuild" : "unknown";
      return { version, initramfs: guestPath, verdict, reason: e.message, drivers: driverPresence(modules, null) };
    }
  }
  const builtin = union([
    insideBuiltin,
    input.modulesBuiltin === null ? null : parseModulesBuiltin(input.modulesBuiltin),
    input.config === null ? null : builtinFromConfig(input.config),
  ]);
  const drivers = driverPresence(modules, builtin);
  const which = (p: DriverPresence) => VIRTIO_BOOT_DRIVERS.filter((d) => drivers[d] === p);
  const subject = guestPath
    ? `the initramfs ${guestPath} of kernel ${version}`
    : `kernel ${version}, which has no initramfs,`;
  const details = scan ? { parts: scan.parts, entries: scan.entries } : {};
  const missing = which("missing");
  if (missing.length) {
    const xen = drivers.xen_blkfront === "module" ? " (its disk driver is Xen's xen-blkfront)" : "";
    return {
      version,
      initramfs: guestPath,
      verdict: "must-rebuild",
      reason: `${subject} has no ${missing.join(" and ")}, neither as a module nor built in${xen}: it must be rebuilt with the virtio drivers`,
      drivers,
      ...details,
    };
  }
  const unknown = which("unknown");
  if (unknown.length)
    return {
      version,
      initramfs: guestPath,
      verdict: "unknown",
      reason: `${subject} has no ${unknown.join(" and ")} module, and neither modules.builtin nor config-${version} tells whether the kernel has it built in`,
      drivers,
      ...details,
    };
  return {
    version,
    initramfs: guestPath,
    verdict: "ok",
    reason: `${subject} has ${VIRTIO_BOOT_DRIVERS.map((d) => `${d} (${drivers[d]})`).join(" and ")}`,
    drivers,
    ...details,
  };
}
