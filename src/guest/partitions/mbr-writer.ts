/**
 * Writes a DOS (MBR) partition table: up to four primary entries, the disk signature and the 0xAA55 mark, into
 * a sector whose boot code (bytes 0–439) is left as it is, so a boot loader can be written before or after.
 * The reader beside it (mbr.ts) reads back what this writes.
 */

const SECTOR = 512;
const TABLE_AT = 446;
const SIGNATURE_AT = 440;
/** An MBR counts sectors in 32 bits: nothing past 2 TiB (with 512-byte sectors) can be described. */
export const MBR_MAX_SECTORS = 2 ** 32 - 1;

export interface MbrPartitionSpec {
  readonly startLba: number;
  readonly sectors: number;
  /** The type byte: 0x83 Linux, 0x8e LVM, 0x82 swap, 0xee a GPT's protective entry. */
  readonly type: number;
  /** The "active" flag some BIOSes and MBR boot codes look for. */
  readonly bootable?: boolean;
}

/** Geometry every tool assumes for LBA disks: 255 heads, 63 sectors per track. */
const HEADS = 255;
const SECTORS_PER_TRACK = 63;

/**
 * The three CHS bytes of `lba`, or the "beyond CHS" marker (cylinder 1023, head 254, sector 63) that fdisk and
 * sfdisk write once the address no longer fits: nothing reads CHS on a disk that large, but the fields must
 * still say so.
 */
export function chsBytes(lba: number): [number, number, number] {
  const cylinder = Math.floor(lba / (HEADS * SECTORS_PER_TRACK));
  if (cylinder > 1023) return [254, 0xff, 0xff];
  const head = Math.floor(lba / SECTORS_PER_TRACK) % HEADS;
  const sector = (lba % SECTORS_PER_TRACK) + 1;
  return [head, sector | ((cylinder >> 2) & 0xc0), cylinder & 0xff];
}

/**
 * Writes `entries` (at most four, in slots 1–4 in order; a null or missing entry leaves its slot empty),
 * `diskSignature` and the boot mark into `sector`. Ranges are checked: a table this writes is one the reader
 * accepts.
 */
export function writeMbrTable(
  sector: Buffer,
  entries: readonly (MbrPartitionSpec | null)[],
  diskSignature: number,
): void {
  if (sector.length !== SECTOR) throw new RangeError(`an MBR is one ${SECTOR}-byte sector, not ${sector.length}`);
  if (entries.length > 4) throw new RangeError(`an MBR holds 4 primary partitions, not ${entries.length}`);
  if (!Number.isInteger(diskSignature) || diskSignature < 0 || diskSignature > 0xffffffff)
    throw new RangeError(`disk signature ${diskSignature} is not a 32-bit number`);
  sector.writeUInt32LE(diskSignature, SIGNATURE_AT);
  sector.writeUInt16LE(0, SIGNATURE_AT + 4);
  sector.fill(0, TABLE_AT, TABLE_AT + 64);
  for (const [i, e] of entries.entries()) {
    if (!e) continue;
    const end = e.startLba + e.sectors - 1;
    if (!Number.isInteger(e.startLba) || !Number.isInteger(e.sectors) || e.startLba < 1 || e.sectors < 1)
      throw new RangeError(`partition ${i + 1}: start ${e.startLba}, ${e.sectors} sectors`);
    if (end > MBR_MAX_SECTORS)
      throw new RangeError(`partition ${i + 1} ends at sector ${end}, past what an MBR can address (2 TiB)`);
    if (!Number.isInteger(e.type) || e.type < 1 || e.type > 0xff) throw new RangeError(`type ${e.type}`);
    const at = TABLE_AT + i * 16;
    sector[at] = e.bootable ? 0x80 : 0;
    sector.set(chsBytes(e.startLba), at + 1);
    sector[at + 4] = e.type;
    sector.set(chsBytes(end), at + 5);
    sector.writeUInt32LE(e.startLba, at + 8);
    sector.writeUInt32LE(e.sectors, at + 12);
  }
  sector.writeUInt16LE(0xaa55, 510);
}

/** The four primary slots of `sector` as specs (null where empty), to be changed and written back. */
export function readMbrSlots(sector: Buffer): (MbrPartitionSpec | null)[] {
  return [0, 1, 2, 3].map((i) => {
    const at = TABLE_AT + i * 16;
    const type = sector[at + 4]!;
    const sectors = sector.readUInt32LE(at + 12);
    if (type === 0 || sectors === 0) return null;
    return { startLba: sector.readUInt32LE(at + 8), sectors, type, bootable: sector[at] === 0x80 };
  });
}
