/**
 * Writes the OVF descriptor (the .ovf) of a one-VM appliance: References, DiskSection, NetworkSection and a
 * VirtualSystem with OperatingSystemSection and VirtualHardwareSection (CPU, memory, disk controller(s),
 * disks, NIC), plus the target's extensions. The output validates against DMTF's DSP8023 schema for the OVF
 * version (1.x or 2.x), which the tests check with xmllint:
 *
 * - rasd:/vssd: children in alphabetical order, as the CIM schemas' sequences require (VMware insists too);
 * - rasd:ElementName and rasd:InstanceID on every item (required by the schema), rasd:Caption ≤ 64
 *   characters, no rasd:BusNumber (not a RASD property; VirtualBox writes it only for OVF 0.9);
 * - only plain Items, also in OVF 2.0: every importer reads them, while Workstation rejects the 2.0-only
 *   StorageItem/EthernetPortItem;
 * - extensions (vbox:, vmw:) only where the schema has a wildcard or as attributes, and vbox:Machine as a
 *   Section (DSP0243's way to extend), built in vbox-machine-section.ts.
 */
import type { ControllerModel, NicModel } from "./hardware-profile.js";
import { RESOURCE_TYPE, controllerSpelling, nicSpelling, osType } from "./hardware-profile.js";
import type { OvaTarget, OvfVersion } from "./ova-targets.js";
import { buildVBoxMachineSection } from "./vbox-machine-section.js";
import { escapeXml } from "./xml-text.js";

export const OVF_NAMESPACE: Record<OvfVersion, string> = {
  "1.0": "http://schemas.dmtf.org/ovf/envelope/1",
  "2.0": "http://schemas.dmtf.org/ovf/envelope/2",
};
export const RASD_NAMESPACE = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";
export const VSSD_NAMESPACE = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData";
export const VBOX_NAMESPACE = "http://www.virtualbox.org/ovf/machine";
export const VMW_NAMESPACE = "http://www.vmware.com/schema/ovf";
/** The disk format URI VMware, VirtualBox and AWS recognise for a streamOptimized VMDK. */
export const STREAM_OPTIMIZED_URI = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";

export interface OvfDiskSpec {
  readonly diskId: string;
  readonly fileId: string;
  readonly href: string;
  /** Virtual size in bytes. */
  readonly capacity: number;
  /** Size of the VMDK file in the package. */
  readonly fileSize: number;
  /** Guest bytes the disk stores (data, after zero detection). */
  readonly populatedSize: number;
  /** The disk's UUID for VirtualBox (bare, lowercase): DiskSection vbox:uuid and the machine's attachment. */
  readonly vboxUuid: string;
}

export interface OvfDescriptorSpec {
  readonly ovfVersion: OvfVersion;
  readonly target: OvaTarget;
  readonly name: string;
  readonly description?: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly nic: NicModel | "none";
  readonly controller: ControllerModel;
  readonly osType: string;
  readonly hwVersion: number;
  /** The VM's UUID for VirtualBox (bare, lowercase). */
  readonly machineUuid: string;
  readonly disks: readonly OvfDiskSpec[];
  /** Free text recorded in a comment (tool and version). */
  readonly producer: string;
}

/** The order of RASD properties in CIM_ResourceAllocationSettingData_Type's sequence (both schema versions). */
const RASD_ORDER = [
  "Address",
  "AddressOnParent",
  "AllocationUnits",
  "AutomaticAllocation",
  "AutomaticDeallocation",
  "Caption",
  "Connection",
  "ConsumerVisibility",
  "Description",
  "ElementName",
  "HostResource",
  "InstanceID",
  "Limit",
  "MappingBehavior",
  "OtherResourceType",
  "Parent",
  "PoolID",
  "Reservation",
  "ResourceSubType",
  "ResourceType",
  "VirtualQuantity",
  "VirtualQuantityUnits",
  "Weight",
] as const;
type RasdProperty = (typeof RASD_ORDER)[number];
type RasdItem = Partial<Record<RasdProperty, string | number | boolean>>;

/** A disk's controller and slot: which OVF controller item it hangs off and its address there. */
export interface DiskAttachment {
  readonly controllerIndex: number;
  readonly addressOnParent: number;
}

export function diskAttachments(controller: ControllerModel, diskCount: number, consumer: OvaTarget["consumer"]) {
  const perController = controllerSpelling(controller, consumer).disksPerController;
  const attachments: DiskAttachment[] = [];
  for (let i = 0; i < diskCount; i++) {
    attachments.push({ controllerIndex: Math.floor(i / perController), addressOnParent: i % perController });
  }
  return attachments;
}

export function buildOvfDescriptor(spec: OvfDescriptorSpec): string {
  const { target } = spec;
  const consumer = target.consumer;
  const ctl = controllerSpelling(spec.controller, consumer);
  const os = osType(spec.osType);
  const attachments = diskAttachments(spec.controller, spec.disks.length, consumer);
  const controllerCount = spec.disks.length === 0 ? 1 : attachments[attachments.length - 1]!.controllerIndex + 1;
  const ns = OVF_NAMESPACE[spec.ovfVersion];
  const vmware = consumer === "vmware";

  const xmlns = [
    `xmlns="${ns}"`,
    `xmlns:ovf="${ns}"`,
    `xmlns:rasd="${RASD_NAMESPACE}"`,
    `xmlns:vssd="${VSSD_NAMESPACE}"`,
    target.embedsVBoxMachine ? `xmlns:vbox="${VBOX_NAMESPACE}"` : `xmlns:vmw="${VMW_NAMESPACE}"`,
  ];
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<!-- ${escapeXml(spec.producer).replaceAll("--", "- -")} -->`);
  out.push(`<Envelope ovf:version="${spec.ovfVersion}" xml:lang="en-US" ${xmlns.join(" ")}>`);

  out.push(`  <References>`);
  for (const d of spec.disks) {
    out.push(`    <File ovf:href="${escapeXml(d.href)}" ovf:id="${d.fileId}" ovf:size="${d.fileSize}"/>`);
  }
  out.push(`  </References>`);

  out.push(`  <DiskSection>`);
  out.push(`    <Info>Virtual disk information</Info>`);
  for (const d of spec.disks) {
    const vboxUuid = target.embedsVBoxMachine ? ` vbox:uuid="${d.vboxUuid}"` : "";
    out.push(
      `    <Disk ovf:capacity="${d.capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="${d.diskId}" ` +
        `ovf:fileRef="${d.fileId}" ovf:format="${STREAM_OPTIMIZED_URI}" ovf:populatedSize="${d.populatedSize}"${vboxUuid}/>`,
    );
  }
  out.push(`  </DiskSection>`);

  if (spec.nic !== "none") {
    out.push(`  <NetworkSection>`);
    out.push(`    <Info>The list of logical networks</Info>`);
    out.push(`    <Network ovf:name="${escapeXml(target.networkName)}">`);
    out.push(`      <Description>The ${escapeXml(target.networkName)} network</Description>`);
    out.push(`    </Network>`);
    out.push(`  </NetworkSection>`);
  }

  out.push(`  <VirtualSystem ovf:id="${escapeXml(spec.name)}">`);
  out.push(`    <Info>A virtual machine</Info>`);
  out.push(`    <Name>${escapeXml(spec.name)}</Name>`);
  if (spec.description) {
    out.push(`    <AnnotationSection>`);
    out.push(`      <Info>A human-readable annotation</Info>`);
    out.push(`      <Annotation>${escapeXml(spec.description)}</Annotation>`);
    out.push(`    </AnnotationSection>`);
  }
  const osTypeAttr = vmware ? ` vmw:osType="${os.vmware}"` : "";
  out.push(`    <OperatingSystemSection ovf:id="${os.cimId}"${osTypeAttr}>`);
  out.push(`      <Info>The kind of installed guest operating system</Info>`);
  out.push(`      <Description>${escapeXml(os.description)}</Description>`);
  if (target.embedsVBoxMachine) out.push(`      <vbox:OSType ovf:required="false">${os.vbox}</vbox:OSType>`);
  out.push(`    </OperatingSystemSection>`);

  out.push(`    <VirtualHardwareSection>`);
  out.push(`      <Info>Virtual hardware requirements</Info>`);
  out.push(`      <System>`);
  out.push(`        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>`);
  out.push(`        <vssd:InstanceID>0</vssd:InstanceID>`);
  out.push(`        <vssd:VirtualSystemIdentifier>${escapeXml(spec.name)}</vssd:VirtualSystemIdentifier>`);
  out.push(`        <vssd:VirtualSystemType>${target.virtualSystemType(spec.hwVersion)}</vssd:VirtualSystemType>`);
  out.push(`      </System>`);

  let instance = 1;
  const items: RasdItem[] = [];
  items.push({
    // ovftool ignores CPU and memory items without a caption (VirtualBox's exporter notes the same).
    AllocationUnits: "hertz * 10^6",
    Caption: `${spec.cpus} virtual CPU(s)`,
    Description: "Number of virtual CPUs",
    ElementName: `${spec.cpus} virtual CPU(s)`,
    InstanceID: instance++,
    ResourceType: RESOURCE_TYPE.processor,
    VirtualQuantity: spec.cpus,
  });
  items.push({
    AllocationUnits: "byte * 2^20",
    Caption: `${spec.memoryMiB}MB of memory`,
    Description: "Memory Size",
    ElementName: `${spec.memoryMiB}MB of memory`,
    InstanceID: instance++,
    ResourceType: RESOURCE_TYPE.memory,
    VirtualQuantity: spec.memoryMiB,
  });
  const controllerIds: number[] = [];
  for (let c = 0; c < controllerCount; c++) {
    const id = instance++;
    controllerIds.push(id);
    items.push({
      Address: c,
      Caption: `${ctl.caption}${c}`,
      Description: `${ctl.caption.replace(/Controller$/, "").toUpperCase()} Controller`,
      ElementName: `${ctl.caption}${c}`,
      InstanceID: id,
      ...(ctl.subtype === null ? {} : { ResourceSubType: ctl.subtype }),
      ResourceType: ctl.resourceType,
    });
  }
  spec.disks.forEach((d, i) => {
    const at = attachments[i]!;
    items.push({
      AddressOnParent: at.addressOnParent,
      Caption: `disk${i + 1}`,
      Description: "Disk Image",
      ElementName: `disk${i + 1}`,
      HostResource: `ovf:/disk/${d.diskId}`,
      InstanceID: instance++,
      Parent: controllerIds[at.controllerIndex]!,
      ResourceType: RESOURCE_TYPE.disk,
    });
  });
  if (spec.nic !== "none") {
    const nic = nicSpelling(spec.nic, consumer);
    items.push({
      AutomaticAllocation: true,
      Caption: `Ethernet adapter on '${target.networkName}'`,
      Connection: target.networkName,
      Description: `${nic.subtype} ethernet adapter on '${target.networkName}'`,
      ElementName: "ethernet0",
      InstanceID: instance++,
      ResourceSubType: nic.subtype,
      ResourceType: RESOURCE_TYPE.ethernetAdapter,
    });
  }
  for (const item of items) out.push(...formatItem(item, "      "));
  out.push(`    </VirtualHardwareSection>`);

  if (target.embedsVBoxMachine) {
    out.push(
      ...buildVBoxMachineSection({
        machineUuid: spec.machineUuid,
        name: spec.name,
        description: spec.description,
        vboxOsType: os.vbox,
        cpus: spec.cpus,
        memoryMiB: spec.memoryMiB,
        nic: spec.nic,
        controller: spec.controller,
        disks: spec.disks.map((d, i) => ({ uuid: d.vboxUuid, ...attachments[i]! })),
      }).map((l) => `    ${l}`),
    );
  }
  out.push(`  </VirtualSystem>`);
  out.push(`</Envelope>`);
  return out.join("\n") + "\n";
}

function formatItem(item: RasdItem, indent: string): string[] {
  const lines = [`${indent}<Item>`];
  for (const key of RASD_ORDER) {
    const value = item[key];
    if (value === undefined) continue;
    lines.push(`${indent}  <rasd:${key}>${escapeXml(String(value))}</rasd:${key}>`);
  }
  lines.push(`${indent}</Item>`);
  return lines;
}
