/**
 * What `grub-bios-setup` writes, done here on the disk image itself: the host's tool cannot be pointed at a
 * plain file without probing the host's own root disk (it guesses the root device, and failed here on the
 * machine's /dev/vda), and the image is ours to write anyway. Three edits, at the offsets of GRUB's
 * include/grub/i386/pc/boot.h and diskboot.S:
 * - boot.img's code goes into sector 0's first 440 bytes; the disk signature and partition table are kept;
 * - boot.img learns where the core image starts (KERNEL_SECTOR, a 64-bit LBA at 0x5c), and its check that the
 *   BIOS passed a hard-disk drive number is turned off (two NOPs at 0x66), as grub-bios-setup does for a hard
 *   disk, since some BIOSes pass 0 or 1;
 * - the core image's first sector (diskboot.img) ends with a block list saying where the rest of the core is:
 *   its start becomes the sector after the core's first. No Reed-Solomon codes are added (grub-bios-setup
 *   --no-rs-codes): they only repair a core that something else overwrote.
 */

const SECTOR = 512;
const KERNEL_SECTOR_AT = 0x5c;
const DRIVE_CHECK_AT = 0x66;
const BOOT_CODE_BYTES = 440;
/** The block list's entry: start (64-bit LBA), length (16-bit sectors), segment (16-bit), at the sector's end. */
const BLOCKLIST_AT = SECTOR - 12;
/** Where diskboot loads the rest of the core: segment 0x800 plus one sector. */
const CORE_SEGMENT = 0x820;

/** Sector 0 with GRUB's boot code: `sector0`'s signature and table kept, pointing at the core at `coreLba`. */
export function grubBootSector(bootImage: Buffer, sector0: Buffer, coreLba: number): Buffer {
  if (bootImage.length !== SECTOR || bootImage.readUInt16LE(510) !== 0xaa55)
    throw new Error("boot.img is not a 512-byte boot sector");
  const out = Buffer.from(sector0);
  bootImage.copy(out, 0, 0, BOOT_CODE_BYTES);
  out.writeBigUInt64LE(BigInt(coreLba), KERNEL_SECTOR_AT);
  out[DRIVE_CHECK_AT] = 0x90;
  out[DRIVE_CHECK_AT + 1] = 0x90;
  out.writeUInt16LE(0xaa55, 510);
  return out;
}

/** The core image, padded to whole sectors, with its block list pointing at the sectors after `coreLba`. */
export function placedCoreImage(core: Buffer, coreLba: number): Buffer {
  const sectors = Math.ceil(core.length / SECTOR);
  if (sectors < 2) throw new Error(`core.img of ${core.length} bytes is too short`);
  const out = Buffer.alloc(sectors * SECTOR);
  core.copy(out);
  // grub-mkimage fills in the length and segment for a core at LBA 1 (start 2); check that before moving it.
  const length = out.readUInt16LE(BLOCKLIST_AT + 8);
  const segment = out.readUInt16LE(BLOCKLIST_AT + 10);
  if (length !== sectors - 1 || segment !== CORE_SEGMENT)
    throw new Error(`core.img's block list is not the one grub-mkimage writes (length ${length}, segment ${segment})`);
  out.writeBigUInt64LE(BigInt(coreLba + 1), BLOCKLIST_AT);
  return out;
}

/** Whether the 440 bytes of boot code hold a loader this project recognises, and which. */
export function recogniseBootCode(sector0: Buffer): "grub" | "syslinux" | "none" | "unknown" {
  const code = sector0.subarray(0, BOOT_CODE_BYTES);
  if (code.every((b) => b === 0)) return "none";
  const text = code.toString("latin1");
  // boot.img (GRUB 2) and stage1 (GRUB legacy) both carry "GRUB " before their error words.
  if (text.includes("GRUB \0")) return "grub";
  // Syslinux's mbr.bin/altmbr.bin and gptmbr.bin ("Missing operating system" alone is also DOS's and Windows's).
  if (text.includes("Multiple active partitions") && /Missing (operating system|OS)/.test(text)) return "syslinux";
  return "unknown";
}
