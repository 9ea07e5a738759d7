/**
 * What each consumer of an OVA expects, as presets `chromogenic export --target` resolves into concrete
 * settings. Every default below answers a documented refusal or degradation (docs: shared anchors §4, §8):
 *
 * virtualbox — VirtualSystemType "virtualbox-2.2" and a vbox:Machine section (ovf:required="false", with an
 *   ovf:Info child) whose disk attachments name the DiskSection's vbox:uuid values: that is what makes a
 *   double-click import keep controller, NIC and OS type. SATA (AHCI) and E1000 by default, as VirtualBox
 *   creates new VMs. Manifest SHA-1 for OVF 1.0 and SHA-256 for OVF 2.0, the pairing VirtualBox itself writes
 *   ("as of OVF 2.0 we have to use SHA-256").
 * vmware — "vmx-13" by default: the newest hardware family ESXi 6.5 accepts (6.7 takes vmx-14, 7.0 vmx-17,
 *   8.0 vmx-20/21); a VirtualBox family is refused by ESXi ("Unsupported hardware family 'virtualbox-2.2'").
 *   No VirtualBox elements. LSI Logic SCSI and VMXNET3, as open-vmdk's ova-compose. Only OVF items (no
 *   OVF 2.0 StorageItem/EthernetPortItem, which Workstation rejects). SHA-256 manifest; ESXi/vCenter 6.5 and
 *   PowerCLI 6.5.1 reject SHA-256 (vmware/vic#5443) — use --manifest sha1 for those, while ESXi 6.7+ and
 *   vCenter 6.5 U2+ reject SHA-1.
 * aws — VM Import: an OVA of stream-optimized VMDKs, at most 21 disks, each under 16 TiB (checked here);
 *   the importer rebuilds the hardware (it installs its own drivers, keeps one NIC), so the descriptor is the
 *   VMware-style one with vmx-13, LSI Logic and E1000; SHA-256 manifest. Guest rules (64-bit Linux, supported
 *   filesystems, boot disk first) cannot be checked from the image bytes here and stay the user's part.
 */
import { UsageError } from "../errors.js";
import type { ManifestAlgorithm } from "./manifest.js";
import type { ControllerModel, HardwareConsumer, NicModel } from "./hardware-profile.js";

export type OvaTargetName = "virtualbox" | "vmware" | "aws";
export type OvfVersion = "1.0" | "2.0";

export const OVA_TARGETS: readonly OvaTargetName[] = ["virtualbox", "vmware", "aws"];

export interface OvaTarget {
  readonly name: OvaTargetName;
  /** Whose hardware spellings the items use. */
  readonly consumer: HardwareConsumer;
  readonly defaultNic: NicModel;
  readonly defaultController: ControllerModel;
  readonly defaultOsType: string;
  /** The logical network the NIC connects to (NetworkSection and rasd:Connection). */
  readonly networkName: string;
  readonly embedsVBoxMachine: boolean;
  /** VirtualSystemType for a hardware version (ignored by the virtualbox target). */
  virtualSystemType(hwVersion: number): string;
  readonly defaultHwVersion: number;
  defaultManifest(ovfVersion: OvfVersion): ManifestAlgorithm;
  readonly maxDisks: number;
  /** Largest virtual disk the consumer imports, in bytes. */
  readonly maxDiskBytes: number;
}

/** ESXi 6.5's newest hardware version; see the vmware preset above. */
export const DEFAULT_VMX_VERSION = 13;
/** vmx-21 is ESXi 8.0 U2's; nothing newer exists to target. */
export const MAX_VMX_VERSION = 21;
/** The oldest hardware family OVF export makes sense for (ESX 3.x). */
export const MIN_VMX_VERSION = 4;

const TiB = 2 ** 40;

const vmxType = (hw: number) => `vmx-${String(hw).padStart(2, "0")}`;

/** What the VMware-style consumers share: the aws importer reads the descriptor VMware products write. */
const VMWARE_STYLE = {
  consumer: "vmware",
  defaultController: "scsi-lsilogic",
  defaultOsType: "linux64",
  networkName: "VM Network",
  embedsVBoxMachine: false,
  virtualSystemType: vmxType,
  defaultHwVersion: DEFAULT_VMX_VERSION,
  defaultManifest: () => "sha256",
} as const satisfies Partial<OvaTarget>;

const TARGETS: Record<OvaTargetName, OvaTarget> = {
  virtualbox: {
    name: "virtualbox",
    consumer: "virtualbox",
    defaultNic: "e1000",
    defaultController: "sata",
    defaultOsType: "linux64",
    networkName: "NAT",
    embedsVBoxMachine: true,
    virtualSystemType: () => "virtualbox-2.2",
    defaultHwVersion: DEFAULT_VMX_VERSION,
    defaultManifest: (v) => (v === "2.0" ? "sha256" : "sha1"),
    // Ports of one AHCI controller.
    maxDisks: 30,
    maxDiskBytes: 2 * TiB * 1024,
  },
  vmware: {
    ...VMWARE_STYLE,
    name: "vmware",
    defaultNic: "vmxnet3",
    maxDisks: 60,
    // VMFS-6's largest virtual disk is 62 TiB.
    maxDiskBytes: 62 * TiB,
  },
  aws: {
    ...VMWARE_STYLE,
    name: "aws",
    defaultNic: "e1000",
    maxDisks: 21,
    // "Disk images must be less than 16 TiB."
    maxDiskBytes: 16 * TiB - 1,
  },
};

export function ovaTarget(name: string): OvaTarget {
  const target = TARGETS[name as OvaTargetName];
  if (!target) throw new UsageError(`unknown --target "${name}" (known: ${OVA_TARGETS.join(", ")})`);
  return target;
}

export function parseOvfVersion(text: string): OvfVersion {
  if (text === "1.0" || text === "1") return "1.0";
  if (text === "2.0" || text === "2") return "2.0";
  throw new UsageError(`--ovf-version "${text}" is not 1.0 or 2.0`);
}

export function parseHwVersion(text: string): number {
  const m = /^(?:vmx-)?(\d{1,2})$/.exec(text.trim());
  const n = m ? Number(m[1]) : Number.NaN;
  if (!Number.isInteger(n) || n < MIN_VMX_VERSION || n > MAX_VMX_VERSION) {
    throw new UsageError(
      `--hw-version "${text}" is not a VMware hardware version ${MIN_VMX_VERSION}..${MAX_VMX_VERSION}`,
    );
  }
  return n;
}
