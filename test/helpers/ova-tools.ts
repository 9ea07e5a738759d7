/**
 * Helpers for the OVA suites: hand-built tar archives (including hostile ones no honest writer produces),
 * xmllint validation against the DMTF OVF schemas committed under test/fixtures/ovf-schema, and small
 * readers for what an exported OVA contains.
 */
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encodeTarHeader, tarPadding, TAR_BLOCK, USTAR_MAX_SIZE } from "../../src/formats/ova/tar-header.js";
import { convertFile } from "../../src/formats/engine/convert.js";
import { makeRaw, mixedRegions, qemuImg, run } from "./tools.js";

export const SCHEMA_DIR = join(process.cwd(), "test", "fixtures", "ovf-schema");

/** The schema a descriptor must validate against: DMTF's for its OVF version, plus VirtualBox's section. */
export function schemaFor(ovfVersion: "1.0" | "2.0", withVBoxSection: boolean): string {
  const major = ovfVersion === "2.0" ? "2" : "1";
  if (withVBoxSection) return join(SCHEMA_DIR, `vbox-machine-section-${major}.x.xsd`);
  return join(SCHEMA_DIR, `${major}.x`, major === "2" ? "dsp8023_2.0.1.xsd" : "dsp8023_1.1.1.xsd");
}

/** `xmllint --schema`: exit code 0 when the document validates; stderr says why not. */
export async function xmllintValidate(xmlPath: string, schemaPath: string) {
  return run("xmllint", ["--noout", "--nonet", "--schema", schemaPath, xmlPath]);
}

export interface RawEntry {
  readonly name: string;
  readonly data?: Buffer;
  /** tar typeflag; default "0" (regular file). */
  readonly typeflag?: string;
  readonly linkname?: string;
  /** Size written in the header when it must differ from the data's length. */
  readonly claimedSize?: number;
}

/** A tar archive built entry by entry, header fields under the test's control. */
export function buildTar(entries: readonly RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const h = rawHeader(e.name, e.claimedSize ?? data.length, e.typeflag ?? "0", e.linkname ?? "");
    parts.push(h, data, Buffer.alloc(tarPadding(data.length)));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(2 * TAR_BLOCK));
  return Buffer.concat(parts);
}

/** A USTAR header with any name (even hostile ones the encoder refuses), type and link name. */
export function rawHeader(name: string, size: number, typeflag: string, linkname: string): Buffer {
  const h = encodeTarHeader({ name: "placeholder", size, mtime: 0 }, size > USTAR_MAX_SIZE ? "gnu" : "ustar");
  h.fill(0, 0, 100);
  Buffer.from(name, "utf8").copy(h, 0, 0, 100);
  h.write(typeflag, 156, "ascii");
  h.fill(0, 157, 257);
  Buffer.from(linkname, "utf8").copy(h, 157, 0, 100);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

export async function writeTar(path: string, entries: readonly RawEntry[], opts?: { end?: boolean }) {
  await writeFile(path, buildTar(entries, opts));
}

/** Member names and sizes as GNU tar lists them (`tar --list -v`). */
export async function tarList(path: string): Promise<{ name: string; size: number; line: string }[]> {
  const r = await run("tar", ["--list", "-v", "-f", path]);
  if (r.code !== 0) throw new Error(`tar --list failed: ${r.stderr}`);
  return r.stdout
    .trim()
    .split("\n")
    .map((line) => {
      const f = line.trim().split(/\s+/);
      return { name: f[f.length - 1]!, size: Number(f[2]), line };
    });
}

/** The 512 header bytes of member `name`, found by walking the archive's headers. */
export async function memberHeader(path: string, name: string): Promise<Buffer> {
  const h = await open(path, "r");
  try {
    const size = (await h.stat()).size;
    let pos = 0;
    while (pos + TAR_BLOCK <= size) {
      const block = Buffer.alloc(TAR_BLOCK);
      await h.read(block, 0, TAR_BLOCK, pos);
      const memberName = block.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
      const sizeField = block.subarray(124, 136);
      const memberSize =
        sizeField[0]! & 0x80
          ? Number(sizeField.subarray(4).readBigUInt64BE())
          : parseInt(sizeField.toString("ascii"), 8);
      if (memberName === name) return block;
      if (!memberName) break;
      pos += TAR_BLOCK + memberSize + tarPadding(memberSize);
    }
    throw new Error(`${name} not found in ${path}`);
  } finally {
    await h.close();
  }
}

export async function extractAll(ova: string, dir: string): Promise<void> {
  const r = await run("tar", ["-x", "-f", ova, "-C", dir]);
  if (r.code !== 0) throw new Error(`tar -x failed: ${r.stderr}`);
}

export async function readText(path: string): Promise<string> {
  return readFile(path, "utf8");
}

/** A minimal VMware-flavoured descriptor around the given disk files (a disk without `format` has no ovf:format). */
export function vmwareDescriptor(
  disks: readonly { href: string; capacity: string; units: string; format?: string; extra?: string }[],
) {
  const files = disks
    .map((d, i) => `<File ovf:href="${d.href}" ovf:id="file${i + 1}"${d.extra ?? ""}/>`)
    .join("\n    ");
  const diskEls = disks
    .map(
      (d, i) =>
        `<Disk ovf:capacity="${d.capacity}" ovf:capacityAllocationUnits="${d.units}" ovf:diskId="vmdisk${i + 1}" ovf:fileRef="file${i + 1}"${d.format === undefined ? "" : ` ovf:format="${d.format}"`}/>`,
    )
    .join("\n    ");
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<ovf:Envelope vmw:buildId="build-1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <ovf:References>
    ${files}
  </ovf:References>
  <ovf:DiskSection>
    <ovf:Info>Virtual disk information</ovf:Info>
    ${diskEls}
  </ovf:DiskSection>
  <ovf:VirtualSystem ovf:id="vm">
    <ovf:Info>A virtual machine</ovf:Info>
    <ovf:VirtualHardwareSection>
      <ovf:Info>Virtual hardware requirements</ovf:Info>
      <ovf:System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType></ovf:System>
      <ovf:Item><rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits><rasd:ElementName>mem</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></ovf:Item>
    </ovf:VirtualHardwareSection>
  </ovf:VirtualSystem>
</ovf:Envelope>
`);
}

export interface GuestDisk {
  /** The disk as a raw file: what every variant must compare equal to. */
  readonly raw: string;
  /** streamOptimized VMDK written by our driver. */
  readonly stream: Buffer;
  /** monolithicSparse VMDK written by our driver. */
  readonly sparse: Buffer;
  /** monolithicSparse VMDK written by qemu-img. */
  readonly qemuSparse: Buffer;
  /** qcow2 written by qemu-img. */
  readonly qcow2: Buffer;
}

/** A guest disk of `size` bytes (data, zeros and holes) in the formats OVAs carry, for building archives. */
export async function guestDisk(dir: string, size: number): Promise<GuestDisk> {
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, size, mixedRegions(size));
  const ours = async (subformat: "streamOptimized" | "monolithicSparse") => {
    const path = join(dir, `${subformat}.vmdk`);
    await convertFile({ input: raw, output: path, outputFormat: "vmdk", createOptions: { subformat } });
    return readFile(path);
  };
  const qemu = async (name: string, format: string, ...options: string[]) => {
    const path = join(dir, name);
    await qemuImg("convert", "-f", "raw", "-O", format, ...options, raw, path);
    return readFile(path);
  };
  return {
    raw,
    stream: await ours("streamOptimized"),
    sparse: await ours("monolithicSparse"),
    qemuSparse: await qemu("qemu-sparse.vmdk", "vmdk", "-o", "subformat=monolithicSparse"),
    qcow2: await qemu("qemu.qcow2", "qcow2"),
  };
}
