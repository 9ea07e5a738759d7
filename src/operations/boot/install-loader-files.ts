import type { BootLoaderPlan } from "./boot-loader-plan.js";
import { installExtlinuxFiles } from "./extlinux.js";
import type { GuestBootChange } from "./guest-boot-folders.js";
import { installGrubFiles } from "./guest-grub-files.js";

/** The chosen loader's files in the mounted guest (or, in a dry run, the list of them). */
export function installLoaderFiles(root: string, plan: BootLoaderPlan, dryRun: boolean): Promise<GuestBootChange[]> {
  return plan.loader === "grub"
    ? installGrubFiles({ root, grubDir: plan.grubDir, config: plan.config, dryRun })
    : installExtlinuxFiles({ root, config: plan.config, dryRun });
}
