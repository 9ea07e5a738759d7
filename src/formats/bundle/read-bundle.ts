/**
 * Unbundles as euca-unbundle does, but checking what it does not: the manifest's signature before any part is
 * read (open-bundle-manifest.ts), each part's digest before its bytes are decrypted, the image's digest before
 * the output is complete (bundle-image-stream.ts). The image is written as raw, sparse, under a temporary name
 * renamed once every check passed; or, with `outputFormat`, streamed into the engine's converter, whose output
 * likewise takes its name only when complete.
 */
import { randomBytes, type KeyObject } from "node:crypto";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { ProgressListener } from "../../util/events.js";
import { ProgressMeter } from "../../util/progress-meter.js";
import { convertFile } from "../engine/convert.js";
import { StreamInput } from "../inputs/stream-input.js";
import type { BundleStore } from "./bundle-store.js";
import { checkBundleFileName } from "./bundle-file-name.js";
import { openBundleManifest } from "./open-bundle-manifest.js";
import { verifiedImageBytes } from "./bundle-image-stream.js";

export interface ReadBundleRequest {
  /** Where the parts are. */
  readonly store: BundleStore;
  /** Where the manifest is, when not beside the parts. */
  readonly manifestStore?: BundleStore;
  readonly manifestName: string;
  /** The user's or the cloud's private key: it unwraps the AES key and IV. */
  readonly privateKey: KeyObject;
  /** Verifies the signature; without it, the public half of `privateKey` (then it must be the user's). */
  readonly userCertificate?: KeyObject;
  /** The folder the image is written into, under the manifest's image name. */
  readonly destination: string;
  /** Write the image in this format (any the engine writes) rather than raw. */
  readonly outputFormat?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
}

export interface ReadBundleResult {
  readonly output: string;
  readonly outputFormat: string;
  readonly imageSize: number;
  readonly digest: string;
  readonly parts: number;
  readonly seconds: number;
}

export async function readBundle(request: ReadBundleRequest): Promise<ReadBundleResult> {
  const started = performance.now();
  const { signal } = request;
  const opened = await openBundleManifest({ ...request, store: request.manifestStore ?? request.store });
  const { image } = opened.manifest;
  const output = join(request.destination, checkBundleFileName(image.name, opened.where));
  const raw = request.outputFormat === undefined || request.outputFormat === "raw";
  // Raw: progress counts the parts verified. Another format: the converter reports its own progress.
  const meter = raw
    ? new ProgressMeter({ phase: "convert", total: image.bundledSize, listener: request.onProgress })
    : undefined;
  const bytes = verifiedImageBytes(opened, { store: request.store, signal, onPart: (n) => meter?.advance(n) });
  if (raw) {
    await writeRawImage(bytes, output, image.size);
    meter?.complete();
  } else {
    await convertFile({
      input: new StreamInput(Readable.from(bytes), `${opened.where} (image)`, { size: image.size }),
      inputFormat: "raw",
      // A stream's length is not the raw driver's to guess: the manifest declares it.
      inputOptions: { size: String(image.size) },
      output,
      outputFormat: request.outputFormat!,
      signal,
      onProgress: request.onProgress,
    });
  }
  return {
    output,
    outputFormat: request.outputFormat ?? "raw",
    imageSize: image.size,
    digest: image.digest,
    parts: image.parts.length,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Writes the bytes sparse under a temporary name, renamed to `output` once the stream ended without error. */
async function writeRawImage(bytes: AsyncIterable<Buffer>, output: string, size: number): Promise<void> {
  const temporary = `${output}.${randomBytes(6).toString("hex")}.partial`;
  const file = await open(temporary, "wx");
  try {
    let position = 0;
    for await (const chunk of bytes) {
      await writeSparse(file, chunk, position);
      position += chunk.length;
    }
    await file.truncate(size);
    await file.sync();
    await file.close();
    await rename(temporary, output);
  } catch (e) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw e;
  }
}

const SPARSE_BLOCK = 64 * 1024;
const ZEROS = Buffer.alloc(SPARSE_BLOCK);

/** Writes `chunk` at `position`, leaving holes where whole aligned blocks are zero (the file is truncated to size). */
async function writeSparse(file: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let at = 0;
  const isZeroBlock = (from: number, to: number) =>
    to - from === SPARSE_BLOCK && ZEROS.equals(chunk.subarray(from, to));
  while (at < chunk.length) {
    // Up to the next block boundary of the file, so holes are aligned.
    const end = Math.min(chunk.length, at + SPARSE_BLOCK - ((position + at) % SPARSE_BLOCK));
    if (isZeroBlock(at, end)) {
      at = end;
      continue;
    }
    // A data run extends over the following non-zero blocks, so writes stay large.
    let runEnd = end;
    while (runEnd < chunk.length) {
      const next = Math.min(chunk.length, runEnd + SPARSE_BLOCK);
      if (isZeroBlock(runEnd, next)) break;
      runEnd = next;
    }
    for (let written = 0; written < runEnd - at;) {
      const { bytesWritten } = await file.write(chunk, at + written, runEnd - at - written, position + at + written);
      written += bytesWritten;
    }
    at = runEnd;
  }
}
