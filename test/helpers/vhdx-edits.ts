/**
 * Editing a VHDX's CRC-32C-protected structures in place (headers, region tables), the CRC recomputed bit by bit,
 * independently of the driver's table-driven one, so tests do not confirm the code with itself.
 */
import { open } from "node:fs/promises";
import { patch } from "./patching.js";

/** CRC-32C bit by bit, independent of the driver's table-driven one. */
function crc32c(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

export async function readAt(path: string, at: number, size: number): Promise<Buffer> {
  const h = await open(path, "r");
  try {
    const buf = Buffer.alloc(size);
    await h.read(buf, 0, size, at);
    return buf;
  } finally {
    await h.close();
  }
}

/** Edits a CRC-protected structure (4 KiB header or 64 KiB region table) and recomputes its CRC unless told not to. */
export async function editChecksummed(path: string, at: number, size: number, edit: (b: Buffer) => void, fix = true) {
  const buf = await readAt(path, at, size);
  edit(buf);
  if (fix) {
    buf.writeUInt32LE(0, 4);
    buf.writeUInt32LE(crc32c(buf), 4);
  }
  await patch(path, at, buf);
}
