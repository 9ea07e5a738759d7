/**
 * VM Import/Export's published requirements, checked on this side before a disk is uploaded for ImportImage
 * or ImportSnapshot: a disk AWS will refuse is refused here, in seconds, instead of after the upload and a
 * task that fails an hour later. A pure function over what the caller knows of the disk (its format from the
 * engine, its sizes, what inspection found of the guest); what the caller does not know is not checked.
 *
 * Each problem is one sentence naming the requirement and the page that states it:
 *  - formats, operating systems: https://docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html
 *  - limits (encrypted volumes, volume count, delta formats):
 *    https://docs.aws.amazon.com/vm-import/latest/userguide/limitations-image-importing.html
 *  - boot mode values: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportImage.html
 *  - volume sizes and partition tables: https://docs.aws.amazon.com/ebs/latest/userguide/volume_constraints.html
 *  - the object size: https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html
 *
 * The operating-system table is the page's rows for the distributions whose rows were read in full (Amazon
 * Linux, CentOS, Debian, Fedora, RHEL); a distribution not in it (Ubuntu, SLES, Oracle Linux, Windows, …) is
 * not judged here and is left to AWS.
 */

import { isOvaFormat } from "../../formats/ova/ova-format.js";
import { findDriver } from "../../formats/registry.js";
import { ChromogenicError } from "../../util/errors.js";
import type { ImportDiskFormat } from "./import-image-task.js";

export const PREREQUISITES_PAGE = "https://docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html";
export const LIMITATIONS_PAGE =
  "https://docs.aws.amazon.com/vm-import/latest/userguide/limitations-image-importing.html";
export const IMPORT_IMAGE_PAGE = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportImage.html";
export const EBS_CONSTRAINTS_PAGE = "https://docs.aws.amazon.com/ebs/latest/userguide/volume_constraints.html";
export const S3_UPLOAD_PAGE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html";

export interface VmImportDisk {
  /** The format as chromogenic names it: "raw", "vmdk", "vhd" (or "vpc"), "vhdx", "ova", "qcow2", … */
  readonly diskFormat: string;
  /** "streamOptimized", "monolithicSparse" (VMDK); "fixed", "dynamic", "differencing" (VHD/VHDX). */
  readonly subformat?: string;
  readonly virtualSizeBytes: number;
  /** The object's size as it will be uploaded. */
  readonly fileSizeBytes?: number;
  /** The disk's partition table, when known: an MBR disk boots only up to 2 TiB. */
  readonly partitionTable?: "mbr" | "gpt";
  readonly bootMode?: string;
  /** "x86_64", "i386", "arm64" (as inspection names it; "amd64"/"aarch64" accepted). */
  readonly architecture?: string;
  /** The guest: type "linux" or "windows", the distribution ("debian", "centos", …), its version and kernel. */
  readonly os?: {
    readonly type: string;
    readonly distro?: string;
    readonly version?: string;
    readonly kernel?: string;
  };
  /** How many disks the VM has (ImportImage of an OVA). */
  readonly volumeCount?: number;
  /** The guest's volumes are encrypted (LUKS, BitLocker). */
  readonly encrypted?: boolean;
}

const TIB = 1024 ** 4;

/** ImportImage's DiskContainer.Format values (API reference), AWS's own words. */
const IMPORT_FORMATS: readonly ImportDiskFormat[] = ["OVA", "VHD", "VHDX", "VMDK", "RAW"];

/**
 * The DiskContainer.Format value for a disk in chromogenic's format `diskFormat` (a driver name or alias, or
 * OVA), undefined when VM Import does not read that format.
 */
export function vmImportFormat(diskFormat: string): ImportDiskFormat | undefined {
  if (isOvaFormat(diskFormat.toLowerCase())) return IMPORT_FORMATS.find((f) => isOvaFormat(f.toLowerCase()));
  const driver = findDriver(diskFormat);
  return driver ? IMPORT_FORMATS.find((f) => findDriver(f) === driver) : undefined;
}

/** The OS table's rows read in full: distro → [version pattern, kernel versions]. */
const LINUX_ROWS: Readonly<
  Record<string, readonly { readonly versions: RegExp; readonly kernels: readonly string[] }[]>
> = {
  amzn: [
    { versions: /^2$/, kernels: ["4.14", "4.19", "5.4", "5.10"] },
    { versions: /^2023(\.|$)/, kernels: ["6.1"] },
  ],
  centos: [
    { versions: /^5(\.(\d|1[01]))?$/, kernels: ["2.6.18"] },
    { versions: /^6(\.[1-8])?$/, kernels: ["2.6.32"] },
    { versions: /^7(\.\d)?$/, kernels: ["3.10.0"] },
    { versions: /^8(\.[0-2])?$/, kernels: ["4.18.0"] },
    { versions: /^9(\.\d+)?$/, kernels: ["5.14.0"] },
  ],
  debian: [
    { versions: /^6(\.0(\.[0-8])?)?$/, kernels: ["2.6.32"] },
    { versions: /^7(\.[0-8](\.0)?)?$/, kernels: ["3.2"] },
    { versions: /^10(\.\d+)?$/, kernels: ["4.19.0"] },
    { versions: /^11(\.\d+)?$/, kernels: ["5.10.0"] },
    // The page lists 12.2 and 12.4, both with 6.1.0: bookworm's kernel, taken here for every 12.x.
    { versions: /^12(\.\d+)?$/, kernels: ["6.1.0"] },
  ],
  fedora: [
    { versions: /^18$/, kernels: ["3.2.5"] },
    { versions: /^19$/, kernels: ["3.9.5"] },
    { versions: /^20$/, kernels: ["3.11.10"] },
  ],
  rhel: [
    { versions: /^5(\.\d+)?$/, kernels: ["2.6.18"] },
    { versions: /^6(\.\d+)?$/, kernels: ["2.6.32"] },
    { versions: /^7(\.\d+)?$/, kernels: ["3.10.0"] },
    { versions: /^8(\.[0-6])?$/, kernels: ["4.18.0"] },
  ],
};

const DISTRO_ALIASES: Readonly<Record<string, string>> = {
  "amazon linux": "amzn",
  amazonlinux: "amzn",
  redhat: "rhel",
  "red hat enterprise linux": "rhel",
};

function normalArch(a: string): string {
  const v = a.toLowerCase();
  if (v === "amd64" || v === "x86-64") return "x86_64";
  if (v === "aarch64") return "arm64";
  if (/^i[3-6]86$/.test(v)) return "i386";
  return v;
}

/** A kernel release ("6.1.0-18-amd64") matches a listed version ("6.1.0", "3.2") on its leading numbers. */
function kernelMatches(kernel: string, listed: string): boolean {
  return kernel === listed || kernel.startsWith(`${listed}.`) || kernel.startsWith(`${listed}-`);
}

/** The problems VM Import would refuse the disk for; empty when none is known. */
export function vmImportProblems(disk: VmImportDisk): string[] {
  const problems: string[] = [];
  const importFormat = vmImportFormat(disk.diskFormat);
  const sub = disk.subformat?.toLowerCase();
  if (!importFormat) {
    problems.push(
      `VM Import reads OVA, stream-optimized VMDK, VHD/VHDX (fixed or dynamic) and raw disks, not ${disk.diskFormat} (${PREREQUISITES_PAGE}).`,
    );
  }
  // The form an importer takes, as the driver declares it (VMDK: streamOptimized).
  const wanted =
    importFormat && !isOvaFormat(disk.diskFormat) ? findDriver(disk.diskFormat)?.importOptions?.subformat : undefined;
  if (wanted && sub !== undefined && sub !== wanted.toLowerCase()) {
    problems.push(
      `VM Import reads a ${importFormat} disk only in its ${wanted} form, not ${disk.subformat} (${PREREQUISITES_PAGE}; SEsparse deltas are refused too: ${LIMITATIONS_PAGE}).`,
    );
  }
  if (sub === "differencing") {
    problems.push(
      `VM Import reads fixed and dynamic ${importFormat ?? disk.diskFormat} disks, not a differencing one (${PREREQUISITES_PAGE}).`,
    );
  }
  if (!Number.isFinite(disk.virtualSizeBytes) || disk.virtualSizeBytes <= 0) {
    problems.push(
      `The disk has no size (${disk.virtualSizeBytes} bytes): an EBS volume is at least 1 GiB (${EBS_CONSTRAINTS_PAGE}).`,
    );
  } else if (disk.virtualSizeBytes > 64 * TIB) {
    problems.push(
      `The disk's ${disk.virtualSizeBytes} bytes exceed the largest EBS volume, 64 TiB (${EBS_CONSTRAINTS_PAGE}).`,
    );
  } else if (disk.partitionTable === "mbr" && disk.virtualSizeBytes > 2 * TIB) {
    problems.push(
      `The disk is partitioned with MBR and larger than 2 TiB: an MBR boot volume is limited to 2 TiB; use GPT (${EBS_CONSTRAINTS_PAGE}).`,
    );
  }
  if (disk.fileSizeBytes !== undefined && disk.fileSizeBytes > 5 * TIB) {
    problems.push(`The file's ${disk.fileSizeBytes} bytes exceed the largest S3 object, 5 TiB (${S3_UPLOAD_PAGE}).`);
  }
  if (disk.bootMode !== undefined && !["legacy-bios", "uefi"].includes(disk.bootMode)) {
    problems.push(
      `ImportImage takes boot mode legacy-bios or uefi, not ${disk.bootMode} (uefi-preferred is refused for imports) (${IMPORT_IMAGE_PAGE}).`,
    );
  }
  const arch = disk.architecture ? normalArch(disk.architecture) : undefined;
  if (arch === "arm64") {
    problems.push(`VM Import does not import ARM64 (${disk.architecture}) VMs (${PREREQUISITES_PAGE}).`);
  } else if (arch !== undefined && arch !== "x86_64" && arch !== "i386") {
    problems.push(`ImportImage takes architecture i386 or x86_64, not ${disk.architecture} (${IMPORT_IMAGE_PAGE}).`);
  }
  const osType = disk.os?.type.toLowerCase();
  if (osType === "linux" && arch === "i386") {
    problems.push(
      `VM Import imports 64-bit Linux only, and this guest is ${disk.architecture} (${PREREQUISITES_PAGE}).`,
    );
  }
  if (osType === "linux" && disk.os?.distro) problems.push(...linuxProblems(disk.os));
  if (disk.volumeCount !== undefined && disk.volumeCount > 21) {
    problems.push(
      `An import task fails for a VM with more than 21 volumes, and this one has ${disk.volumeCount}: import the others with ImportSnapshot (${LIMITATIONS_PAGE}).`,
    );
  }
  if (disk.encrypted) {
    problems.push(`VM Import does not import VMs with encrypted volumes: decrypt them first (${LIMITATIONS_PAGE}).`);
  }
  return problems;
}

/** Throws an EUNSUPPORTED error naming `file` and every problem, when VM Import would refuse the disk. */
export function checkVmImportable(disk: VmImportDisk, file: string): void {
  const problems = vmImportProblems(disk);
  if (problems.length === 0) return;
  throw new ChromogenicError(`${file} cannot be imported by AWS VM Import: ${problems.join(" ")}`, "EUNSUPPORTED");
}

function linuxProblems(os: NonNullable<VmImportDisk["os"]>): string[] {
  const raw = os.distro!.toLowerCase();
  const distro = DISTRO_ALIASES[raw] ?? raw;
  const rows = LINUX_ROWS[distro];
  if (!rows) return []; // not in the rows read: left to AWS
  const name = `${os.distro} ${os.version ?? ""}`.trim();
  if (os.version === undefined) return [];
  const row = rows.find((r) => r.versions.test(os.version!));
  if (!row) {
    return [`VM Import does not list ${name} among the operating systems it imports (${PREREQUISITES_PAGE}).`];
  }
  if (os.kernel !== undefined && !row.kernels.some((k) => kernelMatches(os.kernel!, k))) {
    return [
      `VM Import supports ${name} with kernel ${row.kernels.join(" or ")}, and this guest boots ${os.kernel} (${PREREQUISITES_PAGE}).`,
    ];
  }
  return [];
}
