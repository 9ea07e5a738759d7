import { CorruptImageError } from "./errors.js";

/**
 * Ceilings on anything sized by a header field. Image metadata is hostile until checked: no allocation may be
 * sized by a value read from the file without passing through one of these caps first.
 */
export const LIMITS = {
  /** Largest virtual disk accepted: 64 TiB, qcow2's and VHDX's own ceiling. */
  maxVirtualSize: 64 * 2 ** 40,
  /** Largest single metadata table read into memory at once (qemu caps qcow2 L1 at 32 MiB too). */
  maxTableBytes: 32 * 2 ** 20,
  /** Largest header extension / descriptor text read. */
  maxHeaderBytes: 1 * 2 ** 20,
} as const;

/** Throws a CorruptImageError unless `value` is a safe integer in [min, max]. */
export function checkRange(path: string, what: string, value: number | bigint, min: number, max: number): number {
  const n = typeof value === "bigint" ? (value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(value)) : value;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new CorruptImageError(`${path}: ${what} ${value} is outside the allowed range ${min}..${max}`);
  }
  return n;
}
