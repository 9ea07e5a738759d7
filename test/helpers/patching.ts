/** Turning valid images into hostile ones: bytes written over a file in place, and the little-endian fields to write. */
import { open } from "node:fs/promises";

/** Writes `bytes` over `path` at `offset`. */
export async function patch(path: string, offset: number, bytes: Buffer): Promise<void> {
  const h = await open(path, "r+");
  try {
    await h.write(bytes, 0, bytes.length, offset);
  } finally {
    await h.close();
  }
}

/** A little-endian 32-bit field holding `n` (taken modulo 2^32). */
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** A little-endian 64-bit field holding `n`. */
export const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
