/**
 * The settings the VMDK writers use, from the `-o key=value` options (vmdk-create-options.ts), validated before
 * any byte is written, and their defaults:
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
import type * as z from "zod";
import type { CreateOptions } from "../../types.js";
import { validateCreateOptions } from "../../engine/create-option-validation.js";
import type { AdapterType } from "./vmdk-descriptor-writer.js";
import type { vmdkCreateOptions } from "./vmdk-create-options.js";

export type VmdkSubformat = NonNullable<z.output<typeof vmdkCreateOptions>["subformat"]>;

export interface VmdkWriterSettings {
  readonly subformat: VmdkSubformat;
  readonly adapterType: AdapterType;
  readonly hardwareVersion: number;
  readonly toolsVersion: string;
  readonly compressionLevel: number;
  /** Content ID for the descriptor; random unless given (tests pin it to compare outputs byte for byte). */
  readonly cid: string;
}

const DEFAULT_COMPRESSION_LEVEL = 4;
const DEFAULT_HW_VERSION = 4;
const DEFAULT_TOOLS_VERSION = 2147483647;

/** The schema, loaded when there are options to check (zod stays out of a plain conversion's start-up). */
export const loadVmdkCreateOptions = async () => (await import("./vmdk-create-options.js")).vmdkCreateOptions;

export async function vmdkWriterSettings(options: CreateOptions): Promise<VmdkWriterSettings> {
  const given = await validateCreateOptions("vmdk", loadVmdkCreateOptions, options);
  const subformat = given.subformat ?? "monolithicSparse";
  return {
    subformat,
    adapterType: given.adapter_type ?? (subformat === "streamOptimized" ? "lsilogic" : "ide"),
    hardwareVersion: given.compat6 ? 6 : (given.hwversion ?? DEFAULT_HW_VERSION),
    toolsVersion: String(given.toolsversion ?? DEFAULT_TOOLS_VERSION),
    compressionLevel: given.compression_level ?? DEFAULT_COMPRESSION_LEVEL,
    cid: given.cid ?? randomCid(),
  };
}

/** A random content ID; ffffffff and fffffffe mean "no parent" / "no content" to some readers. */
function randomCid(): string {
  for (;;) {
    const n = Math.floor(Math.random() * 2 ** 32);
    if (n < 0xfffffffe) return n.toString(16).padStart(8, "0");
  }
}
