/**
 * The <vbox:Machine> section VirtualBox embeds in its own OVF exports, reduced to what a fresh VM needs. When
 * the section is present VirtualBox builds the VM from it instead of the generic OVF items, so it must agree
 * with them, and its importer insists on (ApplianceImplImport.cpp, Settings.cpp; VBox 6.x/7.x):
 *
 * - ovf:required="false" so every other importer may skip it, and an ovf:Info child (VMware bails out on a
 *   section without one);
 * - Machine/@uuid (in braces) and @name, else "Required Machine/@uuid or @name attributes is missing";
 * - @version, the settings format the content follows; without it VirtualBox guesses one ("1.16-linux" is
 *   VirtualBox 6.x's, read by 6.x and upgraded by 7.x);
 * - every AttachedDevice/Image/@uuid (in braces) equal to a DiskSection Disk's vbox:uuid (bare): otherwise
 *   "contains a medium attachment for the disk image … but the OVF describes no such image";
 * - valid RFC 4122 UUIDs: a malformed one parses as the null UUID and the attachment then matches nothing.
 *
 * Child elements carry no prefix, so they sit in the document's default (OVF) namespace, as in VirtualBox's
 * own exports; VirtualBox matches them by local name.
 */
import type { ControllerModel, NicModel } from "./hardware-profile.js";
import { controllerSpelling, nicSpelling } from "./hardware-profile.js";
import { escapeXml } from "./xml-text.js";

/** VirtualBox 6.x's settings format version. */
export const VBOX_SETTINGS_VERSION = "1.16-linux";

export interface VBoxMachineSpec {
  readonly machineUuid: string;
  readonly name: string;
  readonly description?: string;
  readonly vboxOsType: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly nic: NicModel | "none";
  readonly controller: ControllerModel;
  readonly disks: readonly {
    readonly uuid: string;
    readonly controllerIndex: number;
    readonly addressOnParent: number;
  }[];
}

/** The section's lines, unindented. */
export function buildVBoxMachineSection(spec: VBoxMachineSpec): string[] {
  const ctl = controllerSpelling(spec.controller, "virtualbox");
  const vbox = ctl.vbox!;
  const longMode = /_64$/.test(spec.vboxOsType);
  const lines: string[] = [];
  lines.push(
    `<vbox:Machine ovf:required="false" version="${VBOX_SETTINGS_VERSION}" uuid="{${spec.machineUuid}}" ` +
      `name="${escapeXml(spec.name)}" OSType="${spec.vboxOsType}" snapshotFolder="Snapshots">`,
  );
  lines.push(`  <ovf:Info>Complete VirtualBox machine configuration in VirtualBox format</ovf:Info>`);
  if (spec.description) lines.push(`  <Description>${escapeXml(spec.description)}</Description>`);
  lines.push(`  <Hardware>`);
  lines.push(`    <CPU count="${spec.cpus}">`);
  lines.push(`      <PAE enabled="true"/>`);
  lines.push(`      <LongMode enabled="${longMode}"/>`);
  lines.push(`      <HardwareVirtExLargePages enabled="false"/>`);
  lines.push(`    </CPU>`);
  lines.push(`    <Memory RAMSize="${spec.memoryMiB}"/>`);
  lines.push(`    <Boot>`);
  lines.push(`      <Order position="1" device="HardDisk"/>`);
  lines.push(`      <Order position="2" device="DVD"/>`);
  lines.push(`      <Order position="3" device="None"/>`);
  lines.push(`      <Order position="4" device="None"/>`);
  lines.push(`    </Boot>`);
  lines.push(`    <Display controller="VMSVGA" VRAMSize="16"/>`);
  lines.push(`    <BIOS>`);
  lines.push(`      <IOAPIC enabled="true"/>`);
  lines.push(`    </BIOS>`);
  if (spec.nic !== "none") {
    const nic = nicSpelling(spec.nic, "virtualbox");
    lines.push(`    <Network>`);
    // No MACAddress: VirtualBox generates one, so two imports of the appliance do not collide.
    lines.push(`      <Adapter slot="0" enabled="true" cable="true" type="${nic.vboxType}">`);
    lines.push(`        <NAT/>`);
    lines.push(`      </Adapter>`);
    lines.push(`    </Network>`);
  }
  lines.push(`    <RTC localOrUTC="UTC"/>`);
  lines.push(`  </Hardware>`);
  lines.push(`  <StorageControllers>`);
  const controllerCount = spec.disks.reduce((n, d) => Math.max(n, d.controllerIndex + 1), 1);
  // VirtualBox has one IDE controller with two channels; OVF describes each channel as a controller.
  const vboxControllers = spec.controller === "ide" ? 1 : controllerCount;
  for (let c = 0; c < vboxControllers; c++) {
    const disks = spec.disks.filter((d) => spec.controller === "ide" || d.controllerIndex === c);
    const name = vboxControllers > 1 ? `${vbox.name}${c}` : vbox.name;
    const portCount = spec.controller === "ide" ? 2 : Math.max(1, disks.length);
    lines.push(
      `    <StorageController name="${name}" type="${vbox.type}" PortCount="${portCount}" useHostIOCache="${spec.controller === "ide"}" Bootable="true">`,
    );
    for (const d of disks) {
      // IDE: OVF controller index = channel (port), address = master/slave (device); others: one device per port.
      const port = spec.controller === "ide" ? d.controllerIndex : d.addressOnParent;
      const device = spec.controller === "ide" ? d.addressOnParent : 0;
      lines.push(`      <AttachedDevice type="HardDisk" hotpluggable="false" port="${port}" device="${device}">`);
      lines.push(`        <Image uuid="{${d.uuid}}"/>`);
      lines.push(`      </AttachedDevice>`);
    }
    lines.push(`    </StorageController>`);
  }
  lines.push(`  </StorageControllers>`);
  lines.push(`</vbox:Machine>`);
  return lines;
}
