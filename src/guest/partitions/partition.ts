/**
 * What the guest layer knows about a disk's partitions, whatever table described them. Offsets and sizes are
 * in bytes so callers (loop devices, mounts) never multiply by a sector size themselves.
 */
export type PartitionScheme = "mbr" | "gpt";

export interface Partition {
  /** The number Linux would give it: 1–4 primary MBR, 5+ logical, 1+ GPT entry order. */
  readonly number: number;
  readonly offset: number;
  readonly size: number;
  /** MBR type byte as "0x83", or the GPT type GUID in lower case. */
  readonly type: string;
  /** GPT partition GUID (PARTUUID=); for MBR, Linux's "<disk signature>-<number>" form. */
  readonly partUuid?: string;
  /** GPT partition name (PARTLABEL=). */
  readonly name?: string;
  /** GPT attribute bits as 16 hex digits, when any is set (bit 2: legacy BIOS bootable). */
  readonly attributes?: string;
  /** What the type says the partition holds, so callers can skip swap and look into LVM. */
  readonly role: "filesystem" | "lvm" | "swap" | "efi" | "bios-boot" | "other";
}

export interface PartitionTable {
  readonly scheme: PartitionScheme;
  readonly sectorSize: number;
  /** MBR disk signature as 8 hex digits, or the GPT disk GUID. */
  readonly diskId: string;
  readonly partitions: readonly Partition[];
  /** Set when the primary GPT header or entries were damaged and the backup copy was used. */
  readonly usedBackupGpt?: boolean;
}
