/**
 * The bootable Debian guest (bootable-debian-guest.ts) turned into one that cannot boot on virtio: its
 * initramfs-tools set to MODULES=list with only Xen's block front end and ext4 listed, and its initramfs
 * rebuilt that way — inside the libguestfs appliance, like the conversion itself, never on the host. The kept
 * modules have no xen-blkfront, so the image holds ext4 and nothing to reach a disk with: checkInitramfs says
 * must-rebuild. /etc/machine-id is emptied again afterwards (virt-customize fills it in), as in a cleaned image.
 *
 * Cached as a raw disk beside the other test guests: first build about 2 to 3 minutes under TCG.
 */
import { spawn } from "node:child_process";
import { copyFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { bootableDebianGuest } from "./bootable-debian-guest.js";
import { guestCacheDir, hashOf } from "./debian-guest.js";
import { libguestfsEnv } from "./virt-sysprep.js";

const RECIPE = {
  version: 1,
  write: ["/etc/initramfs-tools/conf.d/xen-only.conf:MODULES=list", "/etc/initramfs-tools/modules:xen-blkfront\next4"],
  run: "update-initramfs -u -k all",
  truncate: "/etc/machine-id",
};

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** virt-customize with the appliance environment of this machine; its output in the error when it fails. */
export async function virtCustomize(args: readonly string[]): Promise<string> {
  const env = await libguestfsEnv();
  return new Promise((resolve, reject) => {
    const child = spawn("virt-customize", args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (e) => reject(new Error(`virt-customize could not run (libguestfs-tools): ${e.message}`)));
    child.on("exit", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`virt-customize ${args.join(" ")} exited ${code}:\n${output}`)),
    );
  });
}

/** The cached raw disk (GPT, ext4 root at 1 MiB) of the guest whose initramfs holds only Xen's drivers. */
export async function xenOnlyInitramfsGuest(): Promise<string> {
  const base = await bootableDebianGuest();
  const raw = join(guestCacheDir(), `debian-xen-only-initramfs-${hashOf({ base: base.name, RECIPE })}.raw`);
  if (await exists(raw)) return raw;
  const building = `${raw}.build-${process.pid}`;
  try {
    await copyFile(base.raw, building);
    await virtCustomize([
      "--format",
      "raw",
      "-a",
      building,
      "--no-network",
      ...RECIPE.write.flatMap((w) => ["--write", w]),
      "--run-command",
      RECIPE.run,
      "--truncate",
      RECIPE.truncate,
    ]);
    await rename(building, raw);
  } finally {
    await rm(building, { force: true });
  }
  return raw;
}
