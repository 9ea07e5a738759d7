/**
 * The VMDK text descriptor: either a small file of its own (monolithicFlat, twoGbMaxExtent*, vmfs) or embedded
 * in a sparse extent (monolithicSparse, streamOptimized). It has `key=value` lines (version, CID, parentCID,
 * createType, …), one line per extent ("RW 4194304 SPARSE "disk-s001.vmdk"", "RW 2048 FLAT "disk-flat.vmdk" 0")
 * and the disk database (`ddb.key = "value"`).
 *
 * Real writers differ, so parsing is lenient about form: any comment header ("# Disk DescriptorFile",
 * "# Disk Descriptor File" from VMDKstream), quoted or bare values (ovftool writes createType unquoted), CRLF
 * line ends, spaces around "=", NUL padding after the text. It is strict about what matters for safety: the
 * text is capped, extent lines must parse completely, sizes must be sane.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import { LIMITS } from "../../limits.js";
import { SECTOR } from "./vmdk-sparse-header.js";

export type ExtentAccess = "RW" | "RDONLY" | "NOACCESS";

export interface ExtentLine {
  readonly access: ExtentAccess;
  readonly sectors: number;
  /** FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, VMFSRDM, VMFSRAW, SESPARSE, … (upper-cased). */
  readonly type: string;
  /** The extent's file name as written (absent for ZERO extents). */
  readonly fileName?: string;
  /** Sector offset inside the file (FLAT extents); 0 when absent. */
  readonly offset: number;
  /** The line as written, for error messages. */
  readonly text: string;
}

export interface VmdkDescriptor {
  /** Every `key=value` line (not ddb.*), values unquoted; keys as written. */
  readonly fields: ReadonlyMap<string, string>;
  readonly ddb: ReadonlyMap<string, string>;
  readonly extents: readonly ExtentLine[];
  readonly createType?: string;
  /** Content ID, the 32-bit hex number identifying this disk's content. */
  readonly cid?: string;
  readonly parentCid?: string;
  readonly parentFileNameHint?: string;
}

/** More extents than this in one descriptor is not a real disk (8 TiB in twoGbMaxExtent pieces). */
export const MAX_EXTENTS = 4096;

/** A parentCID meaning "no parent". */
export const NO_PARENT_CID = "ffffffff";

const EXTENT_LINE = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$/;
const KEY_VALUE = /^([A-Za-z0-9_.]+)\s*=\s*(.*)$/;

/** Decodes descriptor bytes: text up to the first NUL (embedded descriptors are zero-padded), capped. */
export function descriptorText(bytes: Buffer, where: string): string {
  if (bytes.length > LIMITS.maxHeaderBytes) {
    throw new CorruptImageError(
      `${where}: descriptor of ${bytes.length} bytes is larger than the ${LIMITS.maxHeaderBytes}-byte limit`,
    );
  }
  const nul = bytes.indexOf(0);
  // VMware writes UTF-8 (encoding="UTF-8"); older Windows-1252 descriptors differ only in non-ASCII names.
  return bytes.subarray(0, nul < 0 ? bytes.length : nul).toString("utf8");
}

export function parseDescriptor(text: string, where: string): VmdkDescriptor {
  const fields = new Map<string, string>();
  const ddb = new Map<string, string>();
  const extents: ExtentLine[] = [];
  for (const raw of text.split(/\r?\n|\r/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (/^(RW|RDONLY|NOACCESS)\s/.test(line)) {
      const m = EXTENT_LINE.exec(line);
      if (!m) throw new CorruptImageError(`${where}: descriptor extent line is malformed: ${line}`);
      const sectors = Number(m[2]);
      if (!Number.isSafeInteger(sectors) || sectors <= 0 || sectors > LIMITS.maxVirtualSize / SECTOR) {
        throw new CorruptImageError(`${where}: descriptor extent size ${m[2]} sectors is out of range: ${line}`);
      }
      const offset = m[5] === undefined ? 0 : Number(m[5]);
      if (!Number.isSafeInteger(offset) || offset > Number.MAX_SAFE_INTEGER / SECTOR) {
        throw new CorruptImageError(`${where}: descriptor extent offset ${m[5]} is out of range: ${line}`);
      }
      extents.push({
        access: m[1] as ExtentAccess,
        sectors,
        type: m[3]!.toUpperCase(),
        fileName: m[4],
        offset,
        text: line,
      });
      if (extents.length > MAX_EXTENTS) {
        throw new CorruptImageError(`${where}: descriptor lists more than ${MAX_EXTENTS} extents`);
      }
      continue;
    }
    const kv = KEY_VALUE.exec(line);
    // Anything else (unknown syntax from some writer) is ignored, as VMware and qemu ignore it.
    if (!kv) continue;
    const key = kv[1]!;
    const value = unquote(kv[2]!.trim());
    if (key.toLowerCase().startsWith("ddb.")) ddb.set(key, value);
    else fields.set(key, value);
  }
  const get = (name: string) => {
    for (const [k, v] of fields) if (k.toLowerCase() === name.toLowerCase()) return v;
    return undefined;
  };
  return {
    fields,
    ddb,
    extents,
    createType: get("createType"),
    cid: get("CID")?.toLowerCase(),
    parentCid: get("parentCID")?.toLowerCase(),
    parentFileNameHint: get("parentFileNameHint"),
  };
}

function unquote(value: string): string {
  const m = /^"(.*)"$/.exec(value);
  return m ? m[1]! : value;
}

/** True when the descriptor describes a delta (child) disk whose unallocated grains come from a parent. */
export function isDeltaDisk(d: VmdkDescriptor): boolean {
  return d.parentFileNameHint !== undefined || (d.parentCid !== undefined && d.parentCid !== NO_PARENT_CID);
}

/** ddb.* lookup, case-insensitive on the key. */
export function ddbValue(d: VmdkDescriptor, key: string): string | undefined {
  const want = key.toLowerCase();
  for (const [k, v] of d.ddb) if (k.toLowerCase() === want) return v;
  return undefined;
}

/** Refuses a delta disk: its unallocated grains would have to come from another file. */
export function refuseDelta(path: string, d: VmdkDescriptor): void {
  if (!isDeltaDisk(d)) return;
  const parent = d.parentFileNameHint === undefined ? "" : ` "${d.parentFileNameHint}"`;
  throw new UnsupportedFeatureError(
    `${path}: this VMDK is a delta disk (parentCID ${d.parentCid ?? "?"}) whose unallocated grains come from its ` +
      `parent${parent}; chromogenic does not read delta disks: convert the whole chain with VMware's tools or ` +
      `qemu-img first`,
  );
}

/** What `info` shows from a descriptor beside the layout: content IDs and the disk database's main entries. */
export function descriptorFacts(d: VmdkDescriptor | undefined): Record<string, string> {
  const facts: Record<string, string> = {};
  if (d?.cid !== undefined) facts.cid = d.cid;
  if (d?.parentCid !== undefined) facts.parentCid = d.parentCid;
  const shown = [
    ["adapterType", "ddb.adapterType"],
    ["hardwareVersion", "ddb.virtualHWVersion"],
    ["toolsVersion", "ddb.toolsVersion"],
  ] as const;
  for (const [name, key] of shown) {
    const value = d && ddbValue(d, key);
    if (value !== undefined) facts[name] = value;
  }
  return facts;
}

/**
 * A descriptor file: text whose first line that is neither blank nor a comment is `version=N`, mentioning
 * createType, as qemu's probe and VMware's reader expect. Binary files fail the version line test.
 */
export function looksLikeDescriptor(head: Buffer): boolean {
  // qemu-img convert leaves a descriptor file NUL-padded to a whole sector.
  const nul = head.indexOf(0);
  const text = head.subarray(0, nul < 0 ? head.length : nul).toString("latin1");
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    return /^version\s*=\s*[1-3]$/.test(line) && /createType\s*=/i.test(text);
  }
  return false;
}
