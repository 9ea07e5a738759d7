/**
 * The VHD format driver (qemu calls it "vpc"): Microsoft's Virtual PC / Hyper-V disk format, fixed and dynamic.
 * A dynamic disk starts with "conectix" (its footer copy); a fixed disk is raw data with the footer only at the
 * end, so probing also looks at the file's last 512 bytes.
 */
import type { FormatDriver, ProbeInput } from "../../types.js";
import { VHD_FOOTER_SIZE, VhdDiskType, hasFooterCookie, isValidFooter } from "./vhd-footer.js";
import { VhdSource } from "./vhd-source.js";
import { createVhdTarget, loadVhdCreateOptions } from "./vhd-target.js";

async function probe(input: ProbeInput): Promise<number> {
  const { head, size } = input;
  if (size < VHD_FOOTER_SIZE) return 0;
  // The head holds a footer copy only for sparse disks; a fixed disk's first sector is guest data.
  if (head.length >= VHD_FOOTER_SIZE && isValidFooter(head) && head.readUInt32BE(60) !== VhdDiskType.fixed) return 100;
  // A fixed VHD arriving through a pipe cannot be told from raw: its footer is at the end.
  const tail = await input.readTail(VHD_FOOTER_SIZE).catch(() => Buffer.alloc(0));
  if (isValidFooter(tail)) return 100;
  // The cookie with a bad checksum is still most likely a damaged VHD: let open() say what is wrong with it.
  return hasFooterCookie(head) || hasFooterCookie(tail) ? 50 : 0;
}

export const vhdDriver = {
  name: "vhd",
  aliases: ["vpc"],
  description: "Microsoft VHD (Virtual PC, Hyper-V, Azure): fixed and dynamic; differencing disks are refused",
  probe,
  open: (input, context) => VhdSource.open(input, context),
  create: createVhdTarget,
  createOptions: loadVhdCreateOptions,
  // A dynamic disk's block table is only known at the end; a fixed one is the data, then the footer.
  writeAccess: (options) => (options.subformat === "fixed" ? "sequential" : "random"),
  openOptions: [
    {
      name: "size",
      description:
        "which of the footer's two sizes is the disk: auto picks by creator (geometry for Virtual PC, Virtual " +
        "Server and qemu without force_size, current size for everyone else), footer = current size, " +
        "chs = cylinders × heads × sectors",
      values: "auto|footer|chs",
      default: "auto",
    },
  ],
} as const satisfies FormatDriver;
