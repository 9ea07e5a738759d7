/**
 * Whether a guest's newest kernel has the driver of AWS's Elastic Network Adapter, which every current EC2
 * instance type presents as its only network card: RegisterImage's EnaSupport must say so, and an image
 * registered with it on a guest that lacks the driver boots with no network. The driver is a module
 * (kernel/drivers/net/ethernet/amazon/ena/ena.ko, maybe compressed) in the kernel's module folder, or built in
 * (listed in its modules.builtin). Nothing in the guest runs; paths resolve inside the guest root.
 */
import { guestPathExists, listGuestDir, readGuestText } from "../guest-files.js";
import type { InstalledKernel } from "./boot-files.js";

const MODULE_FOLDER = "kernel/drivers/net/ethernet/amazon/ena";

/** Undefined when it cannot be told: no kernel of the guest's own in /boot, or no module folder for it. */
export async function guestHasEnaDriver(
  root: string,
  kernels: readonly InstalledKernel[],
): Promise<boolean | undefined> {
  const newest = newestKernel(kernels);
  if (!newest) return undefined;
  for (const base of ["/lib/modules", "/usr/lib/modules"]) {
    const dir = `${base}/${newest.version}`;
    const names = await listGuestDir(root, `${dir}/${MODULE_FOLDER}`);
    if (names.some((n) => /^ena\.ko(\.(xz|gz|zst))?$/.test(n))) return true;
    const builtin = await readGuestText(root, `${dir}/modules.builtin`);
    if (builtin?.split("\n").some((line) => line.endsWith("/amazon/ena/ena.ko"))) return true;
    if (await guestPathExists(root, dir)) return false;
  }
  return undefined;
}

/** The kernel with the highest version, compared as versions are (4.19.0-10 before 4.19.0-9 would be wrong). */
function newestKernel(kernels: readonly InstalledKernel[]): InstalledKernel | undefined {
  const collator = new Intl.Collator("en", { numeric: true });
  return [...kernels].sort((a, b) => collator.compare(a.version, b.version)).at(-1);
}
