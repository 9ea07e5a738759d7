/**
 * Built-in modules that many runs never use, loaded on first use instead of when the CLI starts: loading
 * node:zlib costs ~2.5 ms and node:crypto ~4 ms (measured: `node -e "require('zlib')"` against `node -e 0`),
 * while everything chromogenic itself does before an uncompressed conversion starts takes ~25 ms — and such a
 * conversion of the benchmark disk takes 0.3 s in all. process.getBuiltinModule (Node.js 22.3) loads them
 * synchronously, so callers stay as they were but for the call.
 */
import { closeSync, openSync, readSync } from "node:fs";

export function lazyZlib(): typeof import("node:zlib") {
  return process.getBuiltinModule("node:zlib");
}

export function lazyCrypto(): typeof import("node:crypto") {
  return process.getBuiltinModule("node:crypto");
}

/**
 * `bytes` random bytes as hex, from the kernel's generator, for unique file names. Every conversion names its
 * temporary output, and node:crypto's randomBytes would load node:crypto for just that; reading
 * /dev/urandom costs one open and one read. Where it cannot be read, node:crypto it is.
 */
export function randomHex(bytes: number): string {
  const buf = Buffer.alloc(bytes);
  let fd: number;
  try {
    fd = openSync("/dev/urandom", "r");
  } catch {
    return lazyCrypto().randomBytes(bytes).toString("hex");
  }
  try {
    if (readSync(fd, buf, 0, bytes, null) !== bytes) return lazyCrypto().randomBytes(bytes).toString("hex");
  } finally {
    closeSync(fd);
  }
  return buf.toString("hex");
}
