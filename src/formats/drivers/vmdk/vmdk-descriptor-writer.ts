/**
 * The embedded descriptor chromogenic writes into a new monolithicSparse or streamOptimized file. Its shape
 * follows qemu's and VMware's open-vmdk: the "# Disk DescriptorFile" signature line (libvmdk insists on that
 * exact spelling), version=1, a random CID, no parent, one SPARSE extent naming the file itself, then the disk
 * database with hardware version, CHS geometry, adapter type and ddb.toolsVersion (2147483647, "tools
 * installed, version unknown", which keeps ESXi from warning about missing VMware Tools).
 */
import { SECTOR } from "./vmdk-sparse-header.js";

export type AdapterType = "ide" | "lsilogic" | "buslogic" | "legacyESX";

export interface DescriptorSettings {
  readonly createType: "monolithicSparse" | "streamOptimized";
  /** Content ID, 8 lowercase hex digits. */
  readonly cid: string;
  readonly capacitySectors: number;
  readonly extentFileName: string;
  readonly adapterType: AdapterType;
  readonly hardwareVersion: number;
  readonly toolsVersion: string;
}

export interface ChsGeometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectors: number;
}

/** ddb.geometry.cylinders is a 16-bit quantity in every reader that interprets it. */
const MAX_CYLINDERS = 65535;

/**
 * The geometry qemu writes: 63 sectors per track, 16 heads for IDE (the ATA limit) and 255 for the SCSI
 * adapters (what VMware uses for them), cylinders = whole cylinders in the disk, capped at 65535.
 */
export function chsGeometry(capacitySectors: number, adapterType: AdapterType): ChsGeometry {
  const heads = adapterType === "ide" ? 16 : 255;
  const sectors = 63;
  const cylinders = Math.min(MAX_CYLINDERS, Math.floor(capacitySectors / (heads * sectors)));
  return { cylinders, heads, sectors };
}

export function formatDescriptor(s: DescriptorSettings): string {
  const g = chsGeometry(s.capacitySectors, s.adapterType);
  return [
    "# Disk DescriptorFile",
    "version=1",
    `CID=${s.cid}`,
    "parentCID=ffffffff",
    `createType="${s.createType}"`,
    "",
    "# Extent description",
    `RW ${s.capacitySectors} SPARSE "${s.extentFileName.replaceAll('"', "_")}"`,
    "",
    "# The Disk Data Base",
    "#DDB",
    "",
    `ddb.virtualHWVersion = "${s.hardwareVersion}"`,
    `ddb.geometry.cylinders = "${g.cylinders}"`,
    `ddb.geometry.heads = "${g.heads}"`,
    `ddb.geometry.sectors = "${g.sectors}"`,
    `ddb.adapterType = "${s.adapterType}"`,
    `ddb.toolsVersion = "${s.toolsVersion}"`,
    "",
  ].join("\n");
}

/** Sectors reserved for the embedded descriptor, as VMware and qemu reserve: room to edit it in place. */
export const DESCRIPTOR_SECTORS = 20;

/** The descriptor as the zero-padded bytes of its reserved sectors. */
export function descriptorSectors(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const out = Buffer.alloc(DESCRIPTOR_SECTORS * SECTOR);
  if (bytes.length > out.length) throw new Error(`VMDK descriptor of ${bytes.length} bytes does not fit its sectors`);
  bytes.copy(out);
  return out;
}
