/**
 * The `-o key=value` options for writing VMDK, validated before any byte is written, and their defaults:
 *
 * - subformat: monolithicSparse, as qemu-img. streamOptimized is the form VMware's OVF/OVA import, ESXi's
 *   upload API, AWS VM Import and VirtualBox's OVA import expect.
 * - adapter_type: ide for monolithicSparse (qemu's default, what Workstation and VirtualBox attach a disk as
 *   when nothing says otherwise); lsilogic for streamOptimized, as ovftool and VMware's open-vmdk write it,
 *   because that is what ESXi and the cloud importers assume for an OVA disk.
 * - hwversion: 4, as qemu and open-vmdk write. The descriptor's ddb.virtualHWVersion is a legacy field (the
 *   VM's hardware version lives in its .vmx/.ovf); ESXi accepts any value up to its own and VirtualBox and the
 *   cloud importers ignore it. Higher values (up to 21) are accepted for tools that check it.
 * - toolsversion: 2147483647 ("tools installed, version unknown"), as qemu and open-vmdk, so ESXi does not
 *   flag the disk as lacking VMware Tools.
 * - compression_level: 4 (zlib 1..9, streamOptimized only). qemu uses zlib's default 6; on real disk content
 *   (a Debian root filesystem) level 4 writes grains about 3–4% larger than level 6 for about half the CPU
 *   time, which is what lets a conversion finish several times sooner than qemu-img on the same machine.
 */
import { UsageError } from "../../errors.js";
import type { CreateOptionDoc, CreateOptions } from "../../types.js";
import type { AdapterType } from "./vmdk-descriptor-writer.js";

export type VmdkSubformat = "monolithicSparse" | "streamOptimized";

export interface VmdkWriterSettings {
  readonly subformat: VmdkSubformat;
  readonly adapterType: AdapterType;
  readonly hardwareVersion: number;
  readonly toolsVersion: string;
  readonly compressionLevel: number;
  /** Content ID for the descriptor; random unless given (tests pin it to compare outputs byte for byte). */
  readonly cid: string;
}

const SUBFORMATS: readonly VmdkSubformat[] = ["monolithicSparse", "streamOptimized"];
const ADAPTERS: readonly AdapterType[] = ["ide", "lsilogic", "buslogic", "legacyESX"];
export const DEFAULT_COMPRESSION_LEVEL = 4;
const DEFAULT_HW_VERSION = 4;
const MAX_HW_VERSION = 21;
const DEFAULT_TOOLS_VERSION = "2147483647";

export const vmdkCreateOptions: readonly CreateOptionDoc[] = [
  {
    name: "subformat",
    description:
      "monolithicSparse (one growable file) or streamOptimized (compressed, written strictly in order: can go to a pipe, for OVA/ESXi/cloud import)",
    values: SUBFORMATS.join("|"),
    default: "monolithicSparse",
  },
  {
    name: "adapter_type",
    description: "virtual disk controller recorded in the descriptor (ddb.adapterType)",
    values: ADAPTERS.join("|"),
    default: "ide for monolithicSparse, lsilogic for streamOptimized",
  },
  {
    name: "hwversion",
    description: "virtual hardware version recorded in the descriptor (ddb.virtualHWVersion)",
    values: `4..${MAX_HW_VERSION}`,
    default: String(DEFAULT_HW_VERSION),
  },
  {
    name: "compat6",
    description: "qemu's shorthand for hwversion=6",
    values: "on|off",
    default: "off",
  },
  {
    name: "toolsversion",
    description: "VMware Tools version recorded in the descriptor (ddb.toolsVersion)",
    values: "a decimal number",
    default: DEFAULT_TOOLS_VERSION,
  },
  {
    name: "compression_level",
    description: "zlib level for streamOptimized grains (higher: smaller and slower)",
    values: "1..9",
    default: String(DEFAULT_COMPRESSION_LEVEL),
  },
  {
    name: "cid",
    description: "content ID written in the descriptor (8 hex digits)",
    values: "00000000..fffffffd",
    default: "random",
  },
];

export function parseVmdkOptions(options: CreateOptions): VmdkWriterSettings {
  const known = new Set(vmdkCreateOptions.map((o) => o.name));
  const unknown = Object.keys(options).filter((k) => !known.has(k));
  if (unknown.length) {
    throw new UsageError(`vmdk: unknown option(s) ${unknown.join(", ")} (known: ${[...known].join(", ")})`);
  }
  const subformat = (options.subformat ?? "monolithicSparse") as VmdkSubformat;
  if (!SUBFORMATS.includes(subformat)) {
    throw new UsageError(
      `vmdk: subformat "${options.subformat}" cannot be written (writable: ${SUBFORMATS.join(", ")}; ` +
        `flat and split forms are read only)`,
    );
  }
  const adapterType = (options.adapter_type ?? (subformat === "streamOptimized" ? "lsilogic" : "ide")) as AdapterType;
  if (!ADAPTERS.includes(adapterType)) {
    throw new UsageError(`vmdk: adapter_type "${options.adapter_type}" is not one of ${ADAPTERS.join(", ")}`);
  }
  const compat6 = parseOnOff(options.compat6, "compat6");
  if (compat6 && options.hwversion !== undefined) {
    throw new UsageError("vmdk: compat6 and hwversion cannot both be given");
  }
  const hardwareVersion = compat6
    ? 6
    : parseInteger(options.hwversion, "hwversion", 4, MAX_HW_VERSION, DEFAULT_HW_VERSION);
  const toolsVersion = options.toolsversion ?? DEFAULT_TOOLS_VERSION;
  if (!/^\d{1,10}$/.test(toolsVersion) || Number(toolsVersion) > 0xffffffff) {
    throw new UsageError(`vmdk: toolsversion "${toolsVersion}" is not a decimal number below 2^32`);
  }
  if (options.compression_level !== undefined && subformat !== "streamOptimized") {
    throw new UsageError("vmdk: compression_level applies to subformat=streamOptimized only");
  }
  const compressionLevel = parseInteger(
    options.compression_level,
    "compression_level",
    1,
    9,
    DEFAULT_COMPRESSION_LEVEL,
  );
  let cid: string;
  if (options.cid !== undefined) {
    if (!/^[0-9a-fA-F]{8}$/.test(options.cid) || /^ffffff(ff|fe)$/i.test(options.cid)) {
      throw new UsageError(`vmdk: cid "${options.cid}" is not 8 hex digits (ffffffff and fffffffe are reserved)`);
    }
    cid = options.cid.toLowerCase();
  } else {
    cid = randomCid();
  }
  return { subformat, adapterType, hardwareVersion, toolsVersion, compressionLevel, cid };
}

function parseInteger(text: string | undefined, what: string, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`vmdk: ${what} "${text}" is not an integer in ${min}..${max}`);
  }
  return n;
}

function parseOnOff(text: string | undefined, what: string): boolean {
  if (text === undefined || text === "off" || text === "false") return false;
  if (text === "on" || text === "true") return true;
  throw new UsageError(`vmdk: ${what} "${text}" is not on or off`);
}

/** A random content ID; ffffffff and fffffffe mean "no parent" / "no content" to some readers. */
function randomCid(): string {
  for (;;) {
    const n = Math.floor(Math.random() * 2 ** 32);
    if (n < 0xfffffffe) return n.toString(16).padStart(8, "0");
  }
}
