/**
 * A disk made bootable by the simplest host-side means, to prove the boot harness (boot-in-qemu.ts) on a
 * disk whose boot is known to work, independently of the product's bootable-disk writer.
 *
 * Layout (MBR): partition 1 from 1 MiB, 64 MiB, active, type EF, a FAT16 filesystem holding the kernel, the
 * initramfs and two loaders: syslinux for BIOS (its MBR code in sector 0, its boot sector and ldlinux.sys
 * in the FAT, all written by the `syslinux` installer through mtools, nothing mounted), and a stand-alone
 * GRUB image at \EFI\BOOT\BOOTX64.EFI for UEFI (the removable-media path OVMF tries). Partition 2 is the
 * root filesystem image, copied in as it is.
 */
import { rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeRaw, runOk } from "./tools.js";

const MiB = 2 ** 20;
const BOOT_PARTITION_MIB = 64;
/** The FAT volume id, which GRUB's `search --fs-uuid` names as XXXX-XXXX. */
const FAT_VOLUME_ID = "0C1E0B00";
const SYSLINUX_MBR = "/usr/lib/syslinux/mbr/mbr.bin";

export interface BootTestDiskSpec {
  /** A bare filesystem image: the root (its UUID is what `append` should name). */
  readonly rootFs: string;
  readonly kernel: string;
  readonly initrd: string;
  /** The kernel command line, e.g. `root=UUID=… ro console=ttyS0,115200`. */
  readonly append: string;
  readonly output: string;
  /** Where the intermediate files go (removed afterwards). */
  readonly scratchDir: string;
}

function syslinuxConfig(append: string): string {
  return [
    "SERIAL 0 115200",
    "DEFAULT linux",
    "PROMPT 0",
    "TIMEOUT 0",
    "LABEL linux",
    "  LINUX /vmlinuz",
    "  INITRD /initrd.img",
    `  APPEND ${append}`,
    "",
  ].join("\n");
}

function grubConfig(append: string): string {
  const uuid = `${FAT_VOLUME_ID.slice(0, 4)}-${FAT_VOLUME_ID.slice(4)}`;
  return [
    "serial --unit=0 --speed=115200",
    "terminal_input serial",
    "terminal_output serial",
    `search --no-floppy --fs-uuid --set=root ${uuid}`,
    `linux /vmlinuz ${append}`,
    "initrd /initrd.img",
    "boot",
    "",
  ].join("\n");
}

/** GRUB as one EFI program with its configuration inside, carrying only the modules that configuration uses. */
async function grubEfiImage(output: string, append: string, scratchDir: string): Promise<void> {
  const cfg = join(scratchDir, "grub.cfg");
  await writeFile(cfg, grubConfig(append));
  const modules = "normal part_msdos fat search search_fs_uuid linux serial terminal";
  await runOk("grub-mkstandalone", [
    "-O",
    "x86_64-efi",
    "-o",
    output,
    `--modules=${modules}`,
    `--install-modules=${modules}`,
    "--locales=",
    "--fonts=",
    "--themes=",
    `boot/grub/grub.cfg=${cfg}`,
  ]);
}

export async function bootTestDisk(spec: BootTestDiskSpec): Promise<void> {
  const rootBytes = (await stat(spec.rootFs)).size;
  if (rootBytes % MiB) throw new Error(`boot test disk: ${spec.rootFs} is not a whole number of MiB`);
  const fat = join(spec.scratchDir, "boot.fat");
  const efi = join(spec.scratchDir, "BOOTX64.EFI");
  const cfg = join(spec.scratchDir, "syslinux.cfg");
  try {
    await runOk("mkfs.fat", [
      "-F",
      "16",
      "-n",
      "BOOTTEST",
      "-i",
      FAT_VOLUME_ID,
      "-h",
      "2048",
      "-C",
      fat,
      String(BOOT_PARTITION_MIB * 1024),
    ]);
    await writeFile(cfg, syslinuxConfig(spec.append));
    await grubEfiImage(efi, spec.append, spec.scratchDir);
    await runOk("mmd", ["-i", fat, "::/syslinux", "::/EFI", "::/EFI/BOOT"]);
    await runOk("mcopy", ["-i", fat, spec.kernel, "::/vmlinuz"]);
    await runOk("mcopy", ["-i", fat, spec.initrd, "::/initrd.img"]);
    await runOk("mcopy", ["-i", fat, cfg, "::/syslinux/syslinux.cfg"]);
    await runOk("mcopy", ["-i", fat, efi, "::/EFI/BOOT/BOOTX64.EFI"]);
    await runOk("syslinux", ["--install", "--directory", "/syslinux", fat]);

    const bootStart = MiB / 512;
    const rootStart = bootStart + (BOOT_PARTITION_MIB * MiB) / 512;
    await makeRaw(spec.output, (2 + BOOT_PARTITION_MIB) * MiB + rootBytes);
    const table = `label: dos\nstart=${bootStart}, size=${(BOOT_PARTITION_MIB * MiB) / 512}, type=ef, bootable\nstart=${rootStart}, size=${rootBytes / 512}, type=83\n`;
    await runOk("sh", ["-c", `printf '%s' '${table}' | sfdisk --quiet '${spec.output}'`]);
    // Sector 0 keeps the table sfdisk wrote: only the first 440 bytes (the boot code) come from syslinux.
    await runOk("dd", [`of=${spec.output}`, "bs=440", "count=1", "conv=notrunc", "status=none", `if=${SYSLINUX_MBR}`]);
    for (const [from, start] of [
      [fat, bootStart],
      [spec.rootFs, rootStart],
    ] as const)
      await runOk("dd", [
        `if=${from}`,
        `of=${spec.output}`,
        "bs=1M",
        `seek=${start * 512}`,
        "oflag=seek_bytes",
        "conv=notrunc,sparse",
        "status=none",
      ]);
  } finally {
    for (const f of [fat, efi, cfg, join(spec.scratchDir, "grub.cfg")]) await rm(f, { force: true });
  }
}
