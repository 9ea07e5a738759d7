/**
 * `info --output=json`: a disk image described with qemu-img info's keys and shapes (qemu 7.2's
 * ImageInfo in qapi/block-core.json), so that scripts written for qemu-img read ours unchanged. Only what
 * our drivers know is written; a key qemu-img would add from data we do not keep (a VMDK's per-extent list)
 * is left out rather than made up. `--json` keeps chromogenic's own event.
 */
import { dirname, isAbsolute, join } from "node:path";
import type { DiskImageInfo } from "../formats/engine/image-info.js";

/** qemu's names for the formats that qemu names otherwise. */
const QEMU_FORMAT_NAMES: Readonly<Record<string, string>> = { vhd: "vpc" };

type Json = string | number | boolean | Json[] | { [key: string]: Json };

export function qemuInfoJson(info: DiskImageInfo, given: string): Record<string, Json> {
  const out: Record<string, Json> = { "virtual-size": info.virtualSize, filename: given };
  if (info.clusterSize !== undefined) out["cluster-size"] = info.clusterSize;
  out.format = QEMU_FORMAT_NAMES[info.format] ?? info.format;
  out["actual-size"] = info.actualSize;
  const specific = formatSpecific(info, given);
  if (specific) out["format-specific"] = specific;
  if (info.backingFile !== undefined) {
    // Combined as qemu does with the image's name as given (relative stays relative), without opening it.
    out["full-backing-filename"] =
      isAbsolute(info.backingFile) || /^[a-z]+:\/\//i.test(info.backingFile)
        ? info.backingFile
        : join(dirname(given), info.backingFile);
    out["backing-filename"] = info.backingFile;
    if (info.backingFormat !== undefined) out["backing-filename-format"] = info.backingFormat;
  }
  out["dirty-flag"] = info.formatSpecific.dirty === true;
  return out;
}

function formatSpecific(info: DiskImageInfo, given: string): { type: string; data: Record<string, Json> } | undefined {
  const f = info.formatSpecific;
  if (info.format === "qcow2") {
    const data: Record<string, Json> = { compat: String(f.compat) };
    data["compression-type"] = info.compression ?? "zlib";
    if (f.compat !== "0.10") data["lazy-refcounts"] = f.lazyRefcounts === true;
    data["refcount-bits"] = Number(f.refcountBits);
    if (info.dataFile !== undefined) {
      data["data-file"] = info.dataFile;
      data["data-file-raw"] = f.rawExternalData === true;
    }
    if (f.compat !== "0.10") {
      data.corrupt = f.corrupt === true;
      data["extended-l2"] = f.extendedL2 === true;
    }
    return { type: "qcow2", data };
  }
  if (info.format === "vmdk") {
    const data: Record<string, Json> = {};
    // qemu prints the descriptor's CIDs as numbers.
    if (typeof f.cid === "string") data.cid = parseInt(f.cid, 16);
    if (typeof f.parentCid === "string") data["parent-cid"] = parseInt(f.parentCid, 16);
    if (typeof f.createType === "string") data["create-type"] = f.createType;
    // The extent list of a one-file sparse VMDK is the file itself; descriptors with extent files of their
    // own are listed by qemu from data our driver does not keep, so their list is left out.
    if (f.extents === 1 && (f.createType === "monolithicSparse" || f.createType === "streamOptimized")) {
      const extent: Record<string, Json> = {};
      if (f.createType === "streamOptimized") extent.compressed = true;
      Object.assign(extent, { "virtual-size": info.virtualSize, filename: given });
      if (info.clusterSize !== undefined) extent["cluster-size"] = info.clusterSize;
      extent.format = "";
      data.extents = [extent];
    }
    return { type: "vmdk", data };
  }
  return undefined;
}
