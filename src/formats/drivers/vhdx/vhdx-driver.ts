/**
 * The VHDX format driver, read-only: Hyper-V's second disk format, recognised by the "vhdxfile" signature
 * its first 8 bytes always hold.
 */
import type { FormatDriver, ProbeInput } from "../../types.js";
import { VHDX_SIGNATURE } from "./vhdx-header-section.js";
import { VhdxSource } from "./vhdx-source.js";

function probe({ head }: ProbeInput): number {
  return head.length >= 8 && head.subarray(0, 8).equals(VHDX_SIGNATURE) ? 100 : 0;
}

export const vhdxDriver: FormatDriver = {
  name: "vhdx",
  description:
    "Microsoft VHDX (Hyper-V), read-only: fixed and dynamic; differencing files and unreplayed logs are refused",
  probe,
  open: (input) => VhdxSource.open(input),
  openOptions: [],
};
