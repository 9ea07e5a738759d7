/**
 * GRUB's core image for a BIOS PC, made on the host by `grub-mkimage` from Debian's grub-pc-bin: the first code
 * GRUB runs after the 440 bytes of boot.img. It holds only what reaching the boot filesystem takes (the BIOS disk
 * driver, the partition map, the filesystem, LVM when needed, search by UUID) and a two-line configuration that
 * finds that filesystem by UUID and sets the prefix; everything else (normal mode, linux, serial) is loaded as
 * modules from the prefix, which installGrubFiles fills from the same package, so core and modules always match.
 * This keeps the core near 30 KiB: it fits the 62 sectors before a partition at sector 63 too.
 */
import { execFile } from "node:child_process";
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MissingHostToolError } from "./boot-errors.js";

const execFileP = promisify(execFile);

/** Where Debian's grub-pc-bin puts boot.img, the modules and their lists. */
export const GRUB_I386_PC_DIR = "/usr/lib/grub/i386-pc";

export type GrubFilesystemModule = "ext2" | "xfs" | "btrfs";

export interface CoreImageRequest {
  readonly table: "mbr" | "gpt";
  /** The filesystem holding the prefix (the guest's /boot). */
  readonly filesystem: GrubFilesystemModule;
  readonly filesystemUuid: string;
  /** The prefix inside that filesystem: "/boot/grub", or "/grub" when /boot is a filesystem of its own. */
  readonly prefix: string;
  /** The boot filesystem lies on an LVM logical volume. */
  readonly lvm: boolean;
}

/** GRUB's module for a filesystem type as blkid names it; undefined for one GRUB cannot boot from here. */
export function grubFilesystemModule(type: string): GrubFilesystemModule | undefined {
  if (type === "ext2" || type === "ext3" || type === "ext4") return "ext2";
  if (type === "xfs" || type === "btrfs") return type;
  return undefined;
}

export function coreImageModules(request: CoreImageRequest): string[] {
  return [
    "biosdisk",
    request.table === "gpt" ? "part_gpt" : "part_msdos",
    ...(request.lvm ? ["lvm"] : []),
    request.filesystem,
    "search_fs_uuid",
  ];
}

/** The configuration built into the core: find the boot filesystem by UUID wherever the BIOS numbered the disk. */
export function earlyConfig(request: CoreImageRequest): string {
  if (!/^[0-9a-fA-F-]+$/.test(request.filesystemUuid))
    throw new RangeError(`filesystem UUID ${request.filesystemUuid} is not hexadecimal`);
  // search_fs_uuid provides `search.fs_uuid UUID VARIABLE` (`search` itself is the larger search module), as in
  // the load.cfg grub-install embeds.
  return `search.fs_uuid ${request.filesystemUuid} root\n` + `set prefix=($root)'${request.prefix}'\n`;
}

export async function requireGrubFiles(): Promise<void> {
  for (const file of ["boot.img", "diskboot.img", "kernel.img", "moddep.lst"])
    await access(join(GRUB_I386_PC_DIR, file)).catch(() => {
      throw new MissingHostToolError(
        `GRUB for BIOS PCs is not installed on this host (${join(GRUB_I386_PC_DIR, file)} is missing): ` +
          "install Debian's grub-pc-bin",
      );
    });
}

/** Builds the core image with the host's grub-mkimage; its bytes, to be written after the MBR. */
export async function buildCoreImage(request: CoreImageRequest): Promise<Buffer> {
  await requireGrubFiles();
  const dir = await mkdtemp(join(tmpdir(), "chromogenic-grub-"));
  try {
    const config = join(dir, "early.cfg");
    const core = join(dir, "core.img");
    await writeFile(config, earlyConfig(request));
    await execFileP("grub-mkimage", [
      "--format=i386-pc",
      `--directory=${GRUB_I386_PC_DIR}`,
      `--config=${config}`,
      `--prefix=${request.prefix}`,
      `--output=${core}`,
      ...coreImageModules(request),
    ]).catch((e: NodeJS.ErrnoException & { stderr?: string }) => {
      if (e.code === "ENOENT")
        throw new MissingHostToolError("grub-mkimage is not installed on this host: install Debian's grub-common");
      throw new Error(`grub-mkimage failed: ${(e.stderr ?? e.message).trim()}`);
    });
    return await readFile(core);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
