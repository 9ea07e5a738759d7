/**
 * The `-o key=value` options for writing VMDK (loaded on demand; vmdk-writer-settings.ts applies the defaults,
 * explained there).
 */
import * as z from "zod";
import { choice, createOptionsSchema, integer, onOff, option } from "../../engine/create-option-schema.js";
import type { AdapterType } from "./vmdk-descriptor-writer.js";

const ADAPTERS = ["ide", "lsilogic", "buslogic", "legacyESX"] as const satisfies readonly AdapterType[];
const SUBFORMATS = ["monolithicSparse", "streamOptimized"] as const;
/** Content IDs ffffffff and fffffffe mean "no parent" / "no content" to some readers. */
const CID = /^(?!ffffff(ff|fe)$)[0-9a-f]{8}$/i;
const CID_PROBLEM = "is not 8 hex digits (ffffffff and fffffffe are reserved)";

export const vmdkCreateOptions = createOptionsSchema({
  subformat: option(
    choice(SUBFORMATS, `cannot be written (writable: ${SUBFORMATS.join(", ")}; flat and split forms are read only)`),
    {
      description:
        "monolithicSparse (one growable file) or streamOptimized (compressed, written strictly in order: can go to a pipe, for OVA/ESXi/cloud import)",
      default: "monolithicSparse",
    },
  ),
  adapter_type: option(choice(ADAPTERS), {
    description: "virtual disk controller recorded in the descriptor (ddb.adapterType)",
    default: "ide for monolithicSparse, lsilogic for streamOptimized",
  }),
  hwversion: option(integer(4, 21), {
    description: "virtual hardware version recorded in the descriptor (ddb.virtualHWVersion)",
    default: "4",
  }),
  compat6: option(onOff(), { description: "qemu's shorthand for hwversion=6", default: "off" }),
  toolsversion: option(integer(0, 0xffff_ffff, "is not a decimal number below 2^32"), {
    description: "VMware Tools version recorded in the descriptor (ddb.toolsVersion)",
    default: "2147483647",
  }),
  compression_level: option(integer(1, 9), {
    description: "zlib level for streamOptimized grains (higher: smaller and slower)",
    default: "4",
  }),
  cid: option(
    z
      .string({ error: CID_PROBLEM })
      .regex(CID, { error: CID_PROBLEM })
      .transform((cid) => cid.toLowerCase()),
    {
      description: "content ID written in the descriptor (8 hex digits)",
      values: "00000000..fffffffd",
      default: "random",
    },
  ),
}).superRefine((options, ctx) => {
  if (options.compat6 && options.hwversion !== undefined) {
    ctx.addIssue({ code: "custom", path: ["compat6"], message: "and hwversion cannot both be given" });
  }
  if (options.compression_level !== undefined && options.subformat !== "streamOptimized") {
    ctx.addIssue({
      code: "custom",
      path: ["compression_level"],
      message: "applies to subformat=streamOptimized only",
    });
  }
});
