/** Formats a 16-byte on-disk GUID (first three fields little-endian, as GPT stores them) in the usual text form. */
export function formatGuid(b: Buffer): string {
  const hex = (buf: Buffer) => buf.toString("hex");
  const le = (start: number, len: number) => hex(Buffer.from(b.subarray(start, start + len)).reverse());
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}`;
}
