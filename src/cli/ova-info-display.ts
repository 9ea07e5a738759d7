import type { OvaInfo } from "../formats/ova/ova-info.js";
import { formatBytes } from "../util/human.js";

/**
 * `chromogenic info X.ova` as text: the appliance first, then its disks, then the manifest and the reader's
 * warnings ("warning: …" lines, as the clean report shows its own).
 */
export function renderOvaInfo(info: OvaInfo): string {
  const lines = [`image: ${info.path}`, `file format: ova (OVF ${info.ovfVersion}, descriptor ${info.descriptor})`];
  for (const s of info.systems) {
    lines.push(`virtual system: ${s.name ?? s.id}${s.name && s.name !== s.id ? ` (id ${s.id})` : ""}`);
    if (s.hardwareFamily) lines.push(`    hardware family: ${s.hardwareFamily}`);
    if (s.os) lines.push(`    guest OS: ${s.os}`);
    if (s.cpus !== undefined) lines.push(`    CPUs: ${s.cpus}`);
    if (s.memoryBytes !== undefined) lines.push(`    memory: ${formatBytes(s.memoryBytes)}`);
    if (s.controllers.length) lines.push(`    controllers: ${s.controllers.join(", ")}`);
    if (s.nics.length) lines.push(`    network adapters: ${s.nics.join(", ")}`);
    if (s.disks.length) lines.push(`    disks: ${s.disks.join(", ")}`);
    if (s.virtualBoxMachine) lines.push(`    VirtualBox machine section: yes`);
  }
  if (info.networks.length) lines.push(`networks: ${info.networks.join(", ")}`);
  for (const d of info.disks) {
    const how = [
      d.compression ? `${d.compression}-compressed` : undefined,
      d.chunks > 1 ? `${d.chunks} chunks` : undefined,
    ].filter(Boolean);
    lines.push(`disk ${d.index}: ${d.file} (${d.diskId})`);
    lines.push(`    virtual size: ${formatBytes(d.capacity)} (${d.capacity} bytes)`);
    if (d.populatedSize !== undefined) lines.push(`    populated: ${formatBytes(d.populatedSize)}`);
    lines.push(`    stored: ${formatBytes(d.storedSize)}${how.length ? `, ${how.join(", ")}` : ""}`);
    const content = d.contentFormat ? `its content is ${d.contentFormat}` : "convert reads it from the content";
    lines.push(`    format: ${d.format || `not declared (${content})`}`);
  }
  lines.push(
    info.manifest
      ? `manifest: ${info.manifest.file} (${info.manifest.algorithm.toUpperCase()}, ${info.manifest.files} files; verified by convert)`
      : "manifest: none",
  );
  for (const w of info.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n") + "\n";
}
