/**
 * Reads an OVF descriptor into what chromogenic needs to show and import an appliance: the files, the disks
 * (capacity in bytes, format URI, compression/chunking of their files) and each virtual system's hardware.
 * It takes what real producers write: VMware's ovftool and vSphere (OVF 1.x, `#sparse` and `#streamOptimized`
 * URIs, ovf:compression="gzip", ovf:chunkSize, capacities in "byte * 2^30"), VirtualBox (OVF 1.0/2.0, vbox:
 * extensions) and OVF 0.9's `<Section xsi:type="ovf:…_Type">` spelling.
 *
 * The descriptor is untrusted input: it must be well-formed XML under 4 MiB, and any DTD is refused outright
 * (OVF never needs one; refusing it closes entity-expansion attacks before the parser sees them). Element and
 * attribute names are matched by local name, since producers bind the OVF namespace to various prefixes.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import { LIMITS } from "../limits.js";

export const MAX_DESCRIPTOR_BYTES = 4 * 2 ** 20;
/**
 * Deepest nesting of elements accepted (fast-xml-parser's own default, made explicit): a descriptor nests about
 * ten deep, more with VirtualSystemCollections; the limit keeps the parser and the walk over its result bounded.
 */
const MAX_XML_DEPTH = 100;

export type OvfVersionFamily = "0.9" | "1.x" | "2.x";

export interface OvfFileRef {
  readonly id: string;
  readonly href: string;
  readonly size?: number;
  /**
   * "gzip" when the file is compressed (the only compression importers produce); absent when it is not,
   * including when the descriptor says so with DSP0243's explicit "identity".
   */
  readonly compression?: string;
  /** The file is split into members href.000, href.001, … of this many bytes (except the last). */
  readonly chunkSize?: number;
}

export interface OvfDisk {
  readonly diskId: string;
  readonly fileRef?: string;
  readonly capacity: number;
  readonly populatedSize?: number;
  /** The ovf:format URI; "" when the descriptor leaves it out (the content then says what the disk is). */
  readonly format: string;
}

export interface OvfController {
  readonly instanceId: string;
  readonly kind: "ide" | "scsi" | "sata" | "other";
  readonly subtype?: string;
}

export interface OvfSystemDisk {
  readonly diskId: string;
  readonly controller?: string;
  readonly address?: string;
}

export interface OvfNic {
  readonly subtype?: string;
  readonly network?: string;
}

export interface OvfVirtualSystem {
  readonly id: string;
  readonly name?: string;
  readonly osId?: number;
  readonly osDescription?: string;
  readonly virtualSystemType?: string;
  readonly cpus?: number;
  readonly memoryBytes?: number;
  readonly controllers: readonly OvfController[];
  readonly disks: readonly OvfSystemDisk[];
  readonly nics: readonly OvfNic[];
  readonly hasVBoxMachine: boolean;
  readonly annotation?: string;
}

export interface OvfDescriptor {
  readonly version: OvfVersionFamily;
  readonly files: readonly OvfFileRef[];
  readonly disks: readonly OvfDisk[];
  readonly networks: readonly string[];
  readonly systems: readonly OvfVirtualSystem[];
}

type XmlNode = Record<string, unknown>;

const ARRAY_ELEMENTS = new Set([
  "File",
  "Disk",
  "Network",
  "VirtualSystem",
  "VirtualSystemCollection",
  "Item",
  "StorageItem",
  "EthernetPortItem",
  "Section",
  "Content",
]);

export function parseOvfDescriptor(bytes: Buffer, where: string): OvfDescriptor {
  if (bytes.length > MAX_DESCRIPTOR_BYTES) {
    throw new CorruptImageError(
      `${where}: OVF descriptor of ${bytes.length} bytes is beyond the ${MAX_DESCRIPTOR_BYTES}-byte limit`,
    );
  }
  let text = bytes.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw new CorruptImageError(`${where}: OVF descriptor declares a DTD or entities, which OVF never needs; refused`);
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new CorruptImageError(
      `${where}: OVF descriptor is not well-formed XML (line ${valid.err.line}: ${valid.err.msg})`,
    );
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    removeNSPrefix: true,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    processEntities: true,
    htmlEntities: false,
    isArray: (name) => ARRAY_ELEMENTS.has(name),
    maxNestedTags: MAX_XML_DEPTH,
  });
  let doc: XmlNode;
  try {
    doc = parser.parse(text) as XmlNode;
  } catch (e) {
    // The parser's own limits (nesting, entity expansion) end in a bare Error: said here of the user's file.
    const message = (e as Error).message;
    const why = /nested tags/i.test(message)
      ? `its elements nest deeper than ${MAX_XML_DEPTH} levels, far deeper than any OVF descriptor needs`
      : message;
    throw new CorruptImageError(`${where}: OVF descriptor cannot be read: ${why}`, { cause: e });
  }
  const envelope = doc.Envelope as XmlNode | undefined;
  if (!envelope || typeof envelope !== "object")
    throw new CorruptImageError(`${where}: root element is not an OVF Envelope`);
  const version = envelopeVersion(text, where);

  const files: OvfFileRef[] = list(child(envelope, "References")?.File).map((f) => fileRef(f, where));
  const envelopeSections = sections(envelope);
  const disks: OvfDisk[] = list(envelopeSections.DiskSection?.Disk).map((d) => disk(d, where));
  const networks = list(envelopeSections.NetworkSection?.Network)
    .map((n) => attr(n, "name"))
    .filter((n): n is string => n !== undefined);
  const systems: OvfVirtualSystem[] = [];
  collectSystems(envelope, systems, where);
  if (systems.length === 0) throw new CorruptImageError(`${where}: the descriptor describes no VirtualSystem`);
  return { version, files, disks, networks, systems };
}

function envelopeVersion(text: string, where: string): OvfVersionFamily {
  const root = /<([A-Za-z_][\w.-]*:)?Envelope\b([^>]*)>/.exec(text);
  if (!root) throw new CorruptImageError(`${where}: no Envelope element`);
  const prefix = root[1] ? root[1].slice(0, -1) : "";
  const attrRe = prefix ? new RegExp(`xmlns:${prefix}\\s*=\\s*["']([^"']*)["']`) : /xmlns\s*=\s*["']([^"']*)["']/;
  const ns = attrRe.exec(root[2]!)?.[1] ?? "";
  if (ns === "http://schemas.dmtf.org/ovf/envelope/2") return "2.x";
  if (ns === "http://schemas.dmtf.org/ovf/envelope/1") return "1.x";
  // OVF 0.9 (VMware's pre-standard namespace, and the DMTF 0.9 draft's).
  if (
    ns === "http://www.vmware.com/schema/ovf/1/envelope" ||
    /^http:\/\/schemas\.dmtf\.org\/ovf(\/envelope\/0[^/]*)?\/?$/.test(ns)
  ) {
    return "0.9";
  }
  throw new CorruptImageError(`${where}: Envelope namespace "${ns}" is not an OVF namespace`);
}

/** Sections of an element by name, folding OVF 0.9's <Section xsi:type="ovf:NameSection_Type">. */
function sections(node: XmlNode): Record<string, XmlNode | undefined> {
  const out: Record<string, XmlNode | undefined> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith("@")) continue;
    if (key === "Section") {
      for (const s of list(value)) {
        const type = attr(s, "type")
          ?.replace(/^.*:/, "")
          .replace(/_Type$/, "");
        if (type) out[type] ??= s;
      }
    } else if (key.endsWith("Section") && value && typeof value === "object") {
      out[key] ??= (Array.isArray(value) ? value[0] : value) as XmlNode;
    }
  }
  return out;
}

function collectSystems(node: XmlNode, out: OvfVirtualSystem[], where: string, depth = 0): void {
  if (depth > 8) throw new CorruptImageError(`${where}: VirtualSystemCollections nested too deep`);
  for (const vs of list(node.VirtualSystem)) out.push(virtualSystem(vs, where));
  for (const c of list(node.Content)) {
    const type = attr(c, "type") ?? "";
    if (/VirtualSystemCollection_Type$/.test(type)) collectSystems(c, out, where, depth + 1);
    else if (/VirtualSystem_Type$/.test(type)) out.push(virtualSystem(c, where));
  }
  for (const coll of list(node.VirtualSystemCollection)) collectSystems(coll, out, where, depth + 1);
}

function virtualSystem(vs: XmlNode, where: string): OvfVirtualSystem {
  const s = sections(vs);
  const os = s.OperatingSystemSection;
  const hw = s.VirtualHardwareSection;
  const system = hw ? child(hw, "System") : undefined;
  const items = hw ? [...list(hw.Item), ...list(hw.StorageItem), ...list(hw.EthernetPortItem)] : [];
  let cpus: number | undefined;
  let memoryBytes: number | undefined;
  const controllers: OvfController[] = [];
  const disks: OvfSystemDisk[] = [];
  const nics: OvfNic[] = [];
  for (const item of items) {
    const type = Number(text(item.ResourceType));
    const quantity = text(item.VirtualQuantity);
    const instanceId = text(item.InstanceID) ?? text(item.InstanceId) ?? "";
    const subtype = text(item.ResourceSubType);
    switch (type) {
      case 3:
        if (quantity !== undefined) cpus = Number(quantity);
        break;
      case 4:
        if (quantity !== undefined)
          memoryBytes = scaled(quantity, text(item.AllocationUnits) ?? "byte * 2^20", where, "memory");
        break;
      case 5:
        controllers.push({ instanceId, kind: "ide", subtype });
        break;
      case 6:
        controllers.push({ instanceId, kind: "scsi", subtype });
        break;
      case 20:
        controllers.push({ instanceId, kind: /ahci|sata/i.test(subtype ?? "") ? "sata" : "other", subtype });
        break;
      case 10:
        nics.push({ subtype, network: text(list(item.Connection)[0] ?? item.Connection) });
        break;
      case 17: {
        const host = text(list(item.HostResource)[0] ?? item.HostResource) ?? "";
        const m = /^(?:ovf:)?\/?\/?disk\/(.+)$/.exec(host);
        if (m) disks.push({ diskId: m[1]!, controller: text(item.Parent), address: text(item.AddressOnParent) });
        break;
      }
      default:
        break;
    }
  }
  const osIdText = os ? attr(os, "id") : undefined;
  return {
    id: attr(vs, "id") ?? "",
    name: text(vs.Name),
    osId: osIdText !== undefined && /^\d+$/.test(osIdText) ? Number(osIdText) : undefined,
    osDescription: os ? text(os.Description) : undefined,
    virtualSystemType: system ? text(system.VirtualSystemType) : undefined,
    cpus: cpus !== undefined && Number.isSafeInteger(cpus) ? cpus : undefined,
    memoryBytes,
    controllers,
    disks,
    nics,
    hasVBoxMachine: vs.Machine !== undefined,
    annotation: s.AnnotationSection ? text(s.AnnotationSection.Annotation) : undefined,
  };
}

function fileRef(f: XmlNode, where: string): OvfFileRef {
  const id = attr(f, "id");
  const href = attr(f, "href");
  if (!id || !href) throw new CorruptImageError(`${where}: a References/File lacks ovf:id or ovf:href`);
  const size = attr(f, "size");
  const chunk = attr(f, "chunkSize");
  const compression = attr(f, "compression")?.trim().toLowerCase();
  return {
    id,
    href,
    size: size === undefined ? undefined : integer(size, where, `size of file ${id}`),
    compression: compression && compression !== "identity" ? compression : undefined,
    chunkSize: chunk === undefined ? undefined : integer(chunk, where, `chunkSize of file ${id}`),
  };
}

function disk(d: XmlNode, where: string): OvfDisk {
  const diskId = attr(d, "diskId");
  const capacity = attr(d, "capacity");
  if (!diskId || capacity === undefined)
    throw new CorruptImageError(`${where}: a DiskSection/Disk lacks ovf:diskId or ovf:capacity`);
  if (!/^\d+$/.test(capacity.trim())) {
    throw new UnsupportedFeatureError(
      `${where}: disk ${diskId} capacity "${capacity}" is not a number (property references are not supported)`,
    );
  }
  const bytes = scaled(capacity, attr(d, "capacityAllocationUnits") ?? "byte", where, `capacity of disk ${diskId}`);
  if (bytes > LIMITS.maxVirtualSize)
    throw new CorruptImageError(`${where}: disk ${diskId} capacity ${bytes} is beyond the size limit`);
  const populated = attr(d, "populatedSize");
  return {
    diskId,
    fileRef: attr(d, "fileRef"),
    capacity: bytes,
    populatedSize: populated === undefined ? undefined : integer(populated, where, `populatedSize of disk ${diskId}`),
    format: attr(d, "format") ?? "",
  };
}

/**
 * `value` in allocation units as DSP0004 spells them ("byte", "byte * 2^30", "byte * 10^6") or as some
 * producers do ("MegaBytes", "GB", "KB"), in bytes.
 */
export function scaled(value: string, units: string, where: string, what: string): number {
  const n = integer(value, where, what);
  const u = units.replace(/\s+/g, "").toLowerCase();
  let factor: number | undefined;
  const power = /^bytes?(?:\*(\d+)\^(\d+))?$/.exec(u);
  if (power) factor = power[1] ? Number(power[1]) ** Number(power[2]) : 1;
  else {
    factor = (
      {
        kilobytes: 2 ** 10,
        kb: 2 ** 10,
        megabytes: 2 ** 20,
        mb: 2 ** 20,
        gigabytes: 2 ** 30,
        gb: 2 ** 30,
        terabytes: 2 ** 40,
        tb: 2 ** 40,
      } as Record<string, number>
    )[u];
  }
  if (factor === undefined || !Number.isSafeInteger(factor)) {
    throw new UnsupportedFeatureError(`${where}: ${what}: allocation units "${units}" are not understood`);
  }
  const bytes = n * factor;
  if (!Number.isSafeInteger(bytes)) throw new CorruptImageError(`${where}: ${what} ${n} × ${units} is too large`);
  return bytes;
}

function integer(value: string, where: string, what: string): number {
  const t = value.trim();
  const n = /^\d{1,16}$/.test(t) ? Number(t) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new CorruptImageError(`${where}: ${what} "${value}" is not a whole number`);
  return n;
}

function list(value: unknown): XmlNode[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is XmlNode => typeof v === "object" && v !== null);
}

function child(node: XmlNode, name: string): XmlNode | undefined {
  const v = node[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first && typeof first === "object" ? (first as XmlNode) : undefined;
}

function attr(node: XmlNode, name: string): string | undefined {
  const v = node[`@${name}`];
  return typeof v === "string" ? v : undefined;
}

/** An element's text, whether the parser gave a string or an object with attributes and "#text". */
function text(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return text(value[0]);
  if (value && typeof value === "object" && "#text" in value) return text((value as XmlNode)["#text"]);
  return undefined;
}
