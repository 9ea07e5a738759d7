/**
 * File work a job does outside the format engine: positional and sparse writes of downloaded bytes (aligned
 * zero blocks left as holes), hashing a file or a stream with a phase's progress, and a file's allocated size.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { ProgressMeter } from "../util/progress-meter.js";

export async function allocatedBytes(path: string): Promise<number> {
  const s = await stat(path).catch(() => undefined);
  return s ? s.blocks * 512 : 0;
}

/** The blocks the files directly in `folder` take (0 when it is absent). */
export async function folderAllocatedBytes(folder: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(folder).catch(() => [])) bytes += await allocatedBytes(join(folder, name));
  return bytes;
}

export async function writeAll(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

const SPARSE_BLOCK = 64 * 1024;
const ZEROS = Buffer.alloc(SPARSE_BLOCK);

/** Writes `buf` at `position`, leaving aligned all-zero blocks unwritten (holes in a sparse file). */
export async function writeSparse(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let i = 0;
  while (i < buf.length) {
    const end = Math.min(buf.length, i + SPARSE_BLOCK - ((position + i) % SPARSE_BLOCK));
    const piece = buf.subarray(i, end);
    if (!piece.equals(ZEROS.subarray(0, piece.length))) await writeAll(handle, piece, position + i);
    i = end;
  }
}

export async function hashStream(
  data: AsyncIterable<Uint8Array>,
  algorithm: string,
  meter: ProgressMeter,
): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of data) {
    hash.update(chunk);
    meter.advance(chunk.length);
  }
  meter.complete();
  return hash.digest("hex");
}

export async function hashFile(
  path: string,
  algorithm: string,
  meter: ProgressMeter,
  signal?: AbortSignal,
): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 2 ** 20, signal }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    meter.advance(chunk.length);
  }
  meter.complete();
  return hash.digest("hex");
}
