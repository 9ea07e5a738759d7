/**
 * The qcow2 format driver: recognises qcow2 (versions 2 and 3) by its magic, opens images for reading
 * (Qcow2Source) and creates new ones (qcow2-target).
 */
import type { FormatDriver, ProbeInput } from "../../types.js";
import { QCOW2_MAGIC } from "./qcow2-header.js";
import { Qcow2Source } from "./qcow2-source.js";
import { createQcow2Target } from "./qcow2-target.js";
import { loadQcow2CreateOptions } from "./qcow2-writer-options.js";

function probe({ head }: ProbeInput): number {
  if (head.length < 8 || head.readUInt32BE(0) !== QCOW2_MAGIC) return 0;
  const version = head.readUInt32BE(4);
  // The magic alone is a strong sign, but qcow v1 shares it and this driver cannot read that.
  return version === 2 || version === 3 ? 100 : 0;
}

export const qcow2Driver = {
  name: "qcow2",
  description: "QEMU copy-on-write v2 (compat=0.10) and v3 (compat=1.1), with zlib/zstd compression",
  probe,
  open: (input, context) => Qcow2Source.open(input, context),
  create: createQcow2Target,
  createOptions: loadQcow2CreateOptions,
  // The header and tables are written last, at the front of the file.
  writeAccess: () => "random",
} as const satisfies FormatDriver;
