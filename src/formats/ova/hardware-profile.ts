/**
 * The virtual hardware an exported appliance describes, and how each piece is spelled for each consumer:
 * the CIM ResourceType/ResourceSubType pair in the OVF items, VirtualBox's own names in its vbox:Machine
 * section, VMware's guest OS identifiers. The spellings are the ones the importers match on (VirtualBox's
 * ovfreader/ApplianceImpl, ovftool's and open-vmdk's output); anything else is refused before any byte is
 * written rather than producing an appliance one importer silently degrades.
 */
import { UsageError } from "../errors.js";

export type NicModel = "e1000" | "e1000e" | "vmxnet3" | "virtio" | "pcnet";
export type ControllerModel =
  "ide" | "sata" | "scsi-lsilogic" | "scsi-buslogic" | "scsi-lsilogicsas" | "scsi-pvscsi" | "virtio-scsi" | "nvme";

export type HardwareConsumer = "virtualbox" | "vmware";

export const NIC_MODELS: readonly NicModel[] = ["e1000", "e1000e", "vmxnet3", "virtio", "pcnet"];
export const CONTROLLER_MODELS: readonly ControllerModel[] = [
  "ide",
  "sata",
  "scsi-lsilogic",
  "scsi-buslogic",
  "scsi-lsilogicsas",
  "scsi-pvscsi",
  "virtio-scsi",
  "nvme",
];

/** CIM ResourceType values (DSP1041/DSP1047) used in the items. */
export const RESOURCE_TYPE = {
  processor: 3,
  memory: 4,
  ideController: 5,
  parallelScsiHba: 6,
  ethernetAdapter: 10,
  cdDrive: 15,
  disk: 17,
  otherStorageDevice: 20,
} as const;

interface NicSpelling {
  /** rasd:ResourceSubType per consumer; absent = that consumer has no such adapter. */
  readonly subtype: Partial<Record<HardwareConsumer, string>>;
  /** VirtualBox's NetworkAdapterType in its machine settings. */
  readonly vboxType?: string;
}

const NICS: Record<NicModel, NicSpelling> = {
  // "E1000" in a virtualbox-2.2 OVF becomes VirtualBox's 82540EM; VMware's own exports write "E1000".
  e1000: { subtype: { virtualbox: "E1000", vmware: "E1000" }, vboxType: "82540EM" },
  e1000e: { subtype: { vmware: "E1000e" } },
  vmxnet3: { subtype: { vmware: "VmxNet3" } },
  // VirtualBox's importer matches "virtio-net" (or "VirtioNet").
  virtio: { subtype: { virtualbox: "virtio-net" }, vboxType: "virtio" },
  pcnet: { subtype: { virtualbox: "PCNet32", vmware: "PCNet32" }, vboxType: "Am79C973" },
};

interface ControllerSpelling {
  readonly resourceType: number;
  readonly subtype: Partial<Record<HardwareConsumer, string | null>>;
  /** Short name used in captions ("sataController0"). */
  readonly caption: string;
  /** VirtualBox storage controller: its name and type in the machine settings. */
  readonly vbox?: { readonly name: string; readonly type: string };
  /** Disks one controller takes; IDE has two channels of two devices, split over two OVF controllers. */
  readonly disksPerController: number;
  /** The ddb.adapterType the VMDK records for a disk on this controller. */
  readonly vmdkAdapter: "ide" | "lsilogic" | "buslogic";
}

const CONTROLLERS: Record<ControllerModel, ControllerSpelling> = {
  // VMware's own exports leave an IDE controller's subtype out; VirtualBox writes its chipset (PIIX4).
  ide: {
    resourceType: RESOURCE_TYPE.ideController,
    subtype: { virtualbox: "PIIX4", vmware: null },
    caption: "ideController",
    vbox: { name: "IDE", type: "PIIX4" },
    disksPerController: 2,
    vmdkAdapter: "ide",
  },
  sata: {
    resourceType: RESOURCE_TYPE.otherStorageDevice,
    subtype: { virtualbox: "AHCI", vmware: "vmware.sata.ahci" },
    caption: "sataController",
    vbox: { name: "SATA", type: "AHCI" },
    disksPerController: 30,
    vmdkAdapter: "ide",
  },
  "scsi-lsilogic": {
    resourceType: RESOURCE_TYPE.parallelScsiHba,
    subtype: { virtualbox: "lsilogic", vmware: "lsilogic" },
    caption: "scsiController",
    vbox: { name: "SCSI", type: "LsiLogic" },
    // Unit 7 is the controller itself on VMware's SCSI buses.
    disksPerController: 15,
    vmdkAdapter: "lsilogic",
  },
  "scsi-buslogic": {
    resourceType: RESOURCE_TYPE.parallelScsiHba,
    subtype: { virtualbox: "buslogic", vmware: "buslogic" },
    caption: "scsiController",
    vbox: { name: "SCSI", type: "BusLogic" },
    disksPerController: 15,
    vmdkAdapter: "buslogic",
  },
  "scsi-lsilogicsas": {
    resourceType: RESOURCE_TYPE.parallelScsiHba,
    subtype: { virtualbox: "lsilogicsas", vmware: "lsilogicsas" },
    caption: "sasController",
    vbox: { name: "SAS", type: "LsiLogicSas" },
    disksPerController: 15,
    vmdkAdapter: "lsilogic",
  },
  "scsi-pvscsi": {
    resourceType: RESOURCE_TYPE.parallelScsiHba,
    subtype: { vmware: "VirtualSCSI" },
    caption: "pvscsiController",
    disksPerController: 15,
    vmdkAdapter: "lsilogic",
  },
  "virtio-scsi": {
    resourceType: RESOURCE_TYPE.otherStorageDevice,
    subtype: { virtualbox: "VirtioSCSI" },
    caption: "virtioSCSIController",
    vbox: { name: "VirtioSCSI", type: "VirtioSCSI" },
    disksPerController: 30,
    vmdkAdapter: "lsilogic",
  },
  nvme: {
    resourceType: RESOURCE_TYPE.otherStorageDevice,
    subtype: { virtualbox: "NVMe", vmware: "vmware.nvme.controller" },
    caption: "nvmeController",
    vbox: { name: "NVMe", type: "NVMe" },
    disksPerController: 15,
    vmdkAdapter: "lsilogic",
  },
};

export interface OsTypeSpelling {
  /** CIM_OperatingSystem.OsType, the OperatingSystemSection's ovf:id. */
  readonly cimId: number;
  readonly description: string;
  /** VirtualBox's guest OS type id. */
  readonly vbox: string;
  /** VMware's guestId (vmw:osType), chosen among those ESXi 6.5 already knows. */
  readonly vmware: string;
}

const OS_TYPES = {
  other: { cimId: 1, description: "Other", vbox: "Other", vmware: "otherGuest" },
  other64: { cimId: 102, description: "Other 64-Bit", vbox: "Other_64", vmware: "otherGuest64" },
  linux: { cimId: 36, description: "Linux", vbox: "Linux26", vmware: "otherLinuxGuest" },
  linux64: { cimId: 101, description: "Linux 64-Bit", vbox: "Linux26_64", vmware: "otherLinux64Guest" },
  ubuntu: { cimId: 93, description: "Ubuntu", vbox: "Ubuntu", vmware: "ubuntuGuest" },
  ubuntu64: { cimId: 94, description: "Ubuntu 64-Bit", vbox: "Ubuntu_64", vmware: "ubuntu64Guest" },
  debian: { cimId: 95, description: "Debian", vbox: "Debian", vmware: "debian9Guest" },
  debian64: { cimId: 96, description: "Debian 64-Bit", vbox: "Debian_64", vmware: "debian9_64Guest" },
  rhel: { cimId: 79, description: "RedHat Enterprise Linux", vbox: "RedHat", vmware: "rhel7Guest" },
  rhel64: { cimId: 80, description: "RedHat Enterprise Linux 64-Bit", vbox: "RedHat_64", vmware: "rhel7_64Guest" },
  centos: { cimId: 106, description: "CentOS 32-bit", vbox: "RedHat", vmware: "centosGuest" },
  centos64: { cimId: 107, description: "CentOS 64-bit", vbox: "RedHat_64", vmware: "centos64Guest" },
} satisfies Record<string, OsTypeSpelling>;

/** The guest OS names `--os-type` (and the library's `osType`) take. */
export type OsTypeName = keyof typeof OS_TYPES;

export const OS_TYPE_NAMES = Object.keys(OS_TYPES) as readonly OsTypeName[];

export function osType(name: string): OsTypeSpelling {
  const spelling = (OS_TYPES as Record<string, OsTypeSpelling | undefined>)[name];
  if (!spelling) throw new UsageError(`unknown --os-type "${name}" (known: ${OS_TYPE_NAMES.join(", ")})`);
  return spelling;
}

export function nicSpelling(model: NicModel, consumer: HardwareConsumer): { subtype: string; vboxType?: string } {
  const nic = NICS[model];
  const subtype = nic.subtype[consumer];
  if (subtype === undefined) {
    const ok = NIC_MODELS.filter((m) => NICS[m].subtype[consumer] !== undefined);
    throw new UsageError(`--nic ${model} does not exist on ${consumer} (choose one of ${ok.join(", ")})`);
  }
  return { subtype, vboxType: nic.vboxType };
}

export function controllerSpelling(model: ControllerModel, consumer: HardwareConsumer) {
  const c = CONTROLLERS[model];
  const subtype = c.subtype[consumer];
  if (subtype === undefined) {
    const ok = CONTROLLER_MODELS.filter((m) => CONTROLLERS[m].subtype[consumer] !== undefined);
    throw new UsageError(`--controller ${model} does not exist on ${consumer} (choose one of ${ok.join(", ")})`);
  }
  return { ...c, subtype };
}

export function parseNicModel(text: string): NicModel | "none" {
  if (text === "none") return "none";
  if (!(NIC_MODELS as readonly string[]).includes(text)) {
    throw new UsageError(`unknown --nic "${text}" (known: ${NIC_MODELS.join(", ")}, none)`);
  }
  return text as NicModel;
}

export function parseControllerModel(text: string): ControllerModel {
  if (!(CONTROLLER_MODELS as readonly string[]).includes(text)) {
    throw new UsageError(`unknown --controller "${text}" (known: ${CONTROLLER_MODELS.join(", ")})`);
  }
  return text as ControllerModel;
}

export function parseOsType(text: string): OsTypeName {
  osType(text);
  return text as OsTypeName;
}
