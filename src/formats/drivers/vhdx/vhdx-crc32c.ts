/**
 * CRC-32C (Castagnoli), the checksum VHDX puts on its headers, region tables and log entries. Table-driven,
 * one byte at a time: it only ever runs over a few KiB of metadata per open, so a faster slicing variant would
 * add code without saving measurable time.
 */

/** The reflected Castagnoli polynomial 0x1EDC6F41. */
const POLYNOMIAL = 0x82f63b78;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32C of a structure whose own 4-byte checksum field, at `checksumOffset`, counts as zero. */
export function crc32cWithZeroedField(data: Buffer, checksumOffset: number): number {
  const copy = Buffer.from(data);
  copy.fill(0, checksumOffset, checksumOffset + 4);
  return crc32c(copy);
}
