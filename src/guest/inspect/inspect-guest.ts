import { findKernels, type InstalledKernel } from "./boot-files.js";
import { detectDistribution, type Distribution } from "./distribution.js";
import { listUsers, type GuestUser } from "./guest-users.js";
import { guestArchitecture, type GuestArchitecture } from "./guest-architecture.js";
import { guestHasEnaDriver } from "./ena-driver.js";
import {
  detectInitSystem,
  detectPackageManager,
  hasCloudInit,
  type InitSystem,
  type PackageManager,
} from "./system-tools.js";

export interface GuestInspection {
  readonly distribution: Distribution;
  readonly packageManager: PackageManager;
  readonly initSystem: InitSystem;
  readonly kernels: readonly InstalledKernel[];
  readonly cloudInit: boolean;
  readonly users: readonly GuestUser[];
  readonly architecture: GuestArchitecture;
  /** Whether the newest kernel has the ENA driver (EC2's network card); undefined without a kernel in /boot. */
  readonly enaDriver: boolean | undefined;
}

/**
 * Describes a mounted guest tree by reading its files only (no guest program runs). Every path goes through the
 * guest-root resolver; whatever cannot be told is "unknown" or empty rather than an error.
 */
export async function inspectGuest(root: string): Promise<GuestInspection> {
  const kernels = await findKernels(root);
  return {
    distribution: await detectDistribution(root),
    packageManager: await detectPackageManager(root),
    initSystem: await detectInitSystem(root),
    kernels,
    cloudInit: await hasCloudInit(root),
    users: await listUsers(root),
    architecture: await guestArchitecture(root),
    enaDriver: await guestHasEnaDriver(root, kernels),
  };
}
