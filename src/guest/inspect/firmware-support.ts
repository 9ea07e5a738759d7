/**
 * Which firmware a disk can start under, read from its partition table and first sector without mounting
 * anything — what a cloud that asks for a boot mode (EC2's RegisterImage BootMode, Glance's hw_firmware_type)
 * needs to be told:
 *
 * - an EFI system partition (GPT type C12A7328…, MBR type 0xEF) means UEFI firmware can find a loader;
 * - boot code in the first 440 bytes means a BIOS has something to run: on an MBR disk that is the loader, on a
 *   GPT disk it is a hybrid loader that needs its BIOS boot partition (GRUB's core image lives there) or a
 *   partition marked "legacy BIOS bootable" (syslinux' gptmbr);
 * - both: the disk starts under either (the hybrid images distributions publish for clouds).
 *
 * "unknown" when neither holds (a bare filesystem, a disk without a loader): the caller keeps what the
 * source's metadata said.
 */
import type { ImageSource } from "../../formats/types.js";
import { readPartitionTable } from "../partitions/read-partition-table.js";

export type FirmwareSupport = "bios" | "uefi" | "both" | "unknown";

/** The GPT attribute bit 2, "legacy BIOS bootable", as the reader shows attributes (16 hex digits). */
const LEGACY_BIOS_BOOTABLE = 1n << 2n;

export async function firmwareSupport(source: ImageSource, where: string): Promise<FirmwareSupport> {
  const table = await readPartitionTable(source, where);
  if (!table) return "unknown";
  const sector0 = await source.read(0, 512);
  const hasBootCode = sector0.subarray(0, 440).some((b) => b !== 0);
  const uefi = table.partitions.some((p) => p.role === "efi");
  const biosTarget =
    table.scheme === "mbr" ||
    table.partitions.some(
      (p) => p.role === "bios-boot" || (BigInt(`0x${p.attributes ?? "0"}`) & LEGACY_BIOS_BOOTABLE) !== 0n,
    );
  const bios = hasBootCode && biosTarget;
  return uefi && bios ? "both" : uefi ? "uefi" : bios ? "bios" : "unknown";
}
