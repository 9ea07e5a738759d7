/**
 * An MBR disk whose one partition (from 1 MiB, type 8e) is an LVM physical volume holding one volume group
 * with one logical volume, `root`, filled with a given filesystem image: a root on LVM the way distribution
 * installers make it. This machine's kernel has no device-mapper, so the volume group is made inside the
 * libguestfs appliance (its own kernel has it) with guestfish, never on the host.
 */
import { execFile } from "node:child_process";
import { rm, stat, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { runOk } from "./tools.js";
import { libguestfsEnv } from "./virt-sysprep.js";

const MiB = 2 ** 20;
/** The partition's first MiB holds the PV's label and metadata; the LV takes whole 4 MiB extents after it. */
const LVM_OVERHEAD_MIB = 8;

export interface LvmNames {
  readonly volumeGroup: string;
  readonly logicalVolume: string;
}

/**
 * Writes `output` (a new raw file): the table, the PV, the group and the LV taking all of it, then
 * `filesystem`'s bytes copied into the LV. The disk is the filesystem's size (rounded up to whole MiB) plus
 * 1 MiB before the partition and LVM_OVERHEAD_MIB.
 */
export async function lvmDiskHolding(filesystem: string, output: string, names: LvmNames) {
  const { volumeGroup: vg, logicalVolume: lv } = names;
  // The file's own size: mkfs.btrfs --rootdir makes it larger than asked when the tree needs it.
  const filesystemMiB = Math.ceil((await stat(filesystem)).size / MiB);
  await runOk("truncate", ["-s", String((filesystemMiB + 1 + LVM_OVERHEAD_MIB) * MiB), output]);
  const script = [
    "run",
    "part-init /dev/sda mbr",
    "part-add /dev/sda p 2048 -1",
    "part-set-mbr-id /dev/sda 1 0x8e",
    "pvcreate /dev/sda1",
    `vgcreate ${vg} /dev/sda1`,
    `lvcreate-free ${lv} ${vg} 100`,
    `upload ${filesystem} /dev/${vg}/${lv}`,
    "",
  ].join("\n");
  const env = await libguestfsEnv();
  env.LIBGUESTFS_CACHEDIR ??= env.TMPDIR ?? "/var/tmp";
  const scriptFile = `${output}.guestfish`;
  await writeFile(scriptFile, script);
  try {
    await promisify(execFile)("guestfish", ["--format=raw", "-a", output, "-f", scriptFile], { env }).catch(
      (e: Error & { stderr?: string }) => {
        throw new Error(`guestfish could not make the LVM disk ${output}: ${e.stderr || e.message}`);
      },
    );
  } finally {
    await rm(scriptFile, { force: true });
  }
}
