/**
 * Decompression of an initramfs's compressed part, as a stream of bytes in and bytes out: gzip with node's
 * zlib; xz, lzma, zstd, lz4 and bzip2 through the host's own tools, each run as a pure filter (bytes piped in,
 * bytes read out, no file names, no options beyond "decompress to standard output"), killed as soon as we
 * stop reading.
 */
import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { UnsupportedFeatureError } from "../../../formats/errors.js";

export interface Compression {
  readonly name: string;
  /** The host program that decompresses it (null: node's zlib), and the Debian package it comes in. */
  readonly tool: { readonly command: string; readonly args: readonly string[]; readonly debianPackage: string } | null;
}

const MAGICS: readonly { bytes: readonly number[]; compression: Compression }[] = [
  { bytes: [0x1f, 0x8b], compression: { name: "gzip", tool: null } },
  {
    bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    compression: { name: "xz", tool: { command: "xz", args: ["-dc"], debianPackage: "xz-utils" } },
  },
  {
    bytes: [0x28, 0xb5, 0x2f, 0xfd],
    compression: { name: "zstd", tool: { command: "zstd", args: ["-dcq"], debianPackage: "zstd" } },
  },
  // The kernel's lz4 is the legacy format; the frame format is recognised too.
  {
    bytes: [0x02, 0x21, 0x4c, 0x18],
    compression: { name: "lz4", tool: { command: "lz4", args: ["-dcq"], debianPackage: "lz4" } },
  },
  {
    bytes: [0x04, 0x22, 0x4d, 0x18],
    compression: { name: "lz4", tool: { command: "lz4", args: ["-dcq"], debianPackage: "lz4" } },
  },
  {
    bytes: [0x42, 0x5a, 0x68],
    compression: { name: "bzip2", tool: { command: "bzip2", args: ["-dc"], debianPackage: "bzip2" } },
  },
  // lzma-alone has no real magic; the kernel tells it by these first bytes (properties 0x5d, a small dictionary).
  {
    bytes: [0x5d, 0x00, 0x00],
    compression: {
      name: "lzma",
      tool: { command: "xz", args: ["--format=lzma", "-dc"], debianPackage: "xz-utils" },
    },
  },
];

/** The compression whose magic `head` starts with, or null. */
export function compressionOf(head: Buffer): Compression | null {
  for (const { bytes, compression } of MAGICS)
    if (head.length >= bytes.length && bytes.every((b, i) => head[i] === b)) return compression;
  return null;
}

/** The decompressor rejected its input (corrupt data, or data after the stream it decoded). */
export class DecompressionError extends Error {}

/**
 * Decompresses `input`. The returned stream ends normally when the decompressor ends; a decompressor that
 * fails (or is missing) makes the iteration throw — a `DecompressionError` for bad data, an
 * `UnsupportedFeatureError` naming the package for a missing tool.
 */
export async function* decompress(compression: Compression, input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  if (!compression.tool) {
    const gunzip = createGunzip();
    const feeding = pipeline(Readable.from(input), gunzip).then(
      () => null,
      (e: unknown) => e,
    );
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (e) {
      // A failed read of the input reaches us through the decompressor: report it as what it is.
      const failure = await feeding;
      if (failure && failure !== e && !isStreamTeardown(failure)) throw failure;
      throw new DecompressionError(`gzip: ${(e as Error).message}`);
    } finally {
      gunzip.destroy();
    }
    const failure = await feeding;
    if (failure && !isStreamTeardown(failure)) throw failure;
    return;
  }
  const { command, args, debianPackage } = compression.tool;
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  const started = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  let stderr = "";
  child.stderr.setEncoding("latin1");
  child.stderr.on("data", (s: string) => {
    if (stderr.length < 2000) stderr += s;
  });
  try {
    await started;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new UnsupportedFeatureError(
        `reading a ${compression.name}-compressed initramfs needs ${command} (Debian package ${debianPackage})`,
      );
    throw e;
  }
  // The tool may stop reading early (it failed, or we stopped): the broken pipe is then expected.
  const feeding = pipeline(Readable.from(input), child.stdin).then(
    () => null,
    (e: unknown) => e,
  );
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    finished = true;
  } finally {
    // We stopped reading (the caller is done, or failed): the tool goes, and its pipe with it.
    if (!finished) {
      child.kill("SIGKILL");
      await Promise.all([exited, feeding]);
    }
  }
  const code = await exited;
  const failure = await feeding;
  if (failure && !isStreamTeardown(failure)) throw failure;
  if (code !== 0) throw new DecompressionError(`${command}: ${stderr.trim() || `exit status ${code}`}`);
}

function isStreamTeardown(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ERR_STREAM_DESTROYED";
}
