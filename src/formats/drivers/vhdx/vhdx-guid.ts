/**
 * GUIDs as VHDX stores them: Microsoft's mixed-endian layout, where the first three fields are little-endian
 * and the last eight bytes are stored as written.
 */

/** The 16 on-disk bytes of a GUID written as "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX". */
export function guidBytes(text: string): Buffer {
  const hex = text.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GUID: ${text}`);
  const b = Buffer.from(hex, "hex");
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/** The canonical lower-case text of the 16 GUID bytes at `offset`. */
export function formatGuid(buf: Buffer, offset = 0): string {
  const b = Buffer.from(buf.subarray(offset, offset + 16));
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function isZeroGuid(buf: Buffer, offset = 0): boolean {
  return buf.subarray(offset, offset + 16).every((x) => x === 0);
}
