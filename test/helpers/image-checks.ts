/**
 * Checks every format suite makes: reading a whole image through our reader, qemu's reading of the same image,
 * the allocation map, raw outputs compared, and libvhdi's view of a VHD or VHDX.
 */
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { openImage } from "../../src/formats/engine/open-image.js";
import type { Extent, ImageSource } from "../../src/formats/types.js";
import { qemuImg, run, runOk } from "./tools.js";

/** The allocation map of `length` bytes from `offset` (default: the whole disk). */
export async function extentsOf(source: ImageSource, offset?: number, length?: number): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of source.extents(offset, length)) out.push(e);
  return out;
}

/** The whole disk, read in uneven pieces several at a time so reads cross cluster, block and extent boundaries. */
export async function readWhole(source: ImageSource): Promise<Buffer> {
  const out = Buffer.alloc(source.virtualSize);
  const piece = 777 * 1024 + 512 + 3;
  const reads: Promise<Buffer>[] = [];
  for (let pos = 0; pos < source.virtualSize; pos += piece) {
    const length = Math.min(piece, source.virtualSize - pos);
    reads.push(source.read(pos, length, out.subarray(pos, pos + length)));
  }
  await Promise.all(reads);
  return out;
}

/**
 * `qemu-img convert -O raw` of `image`, read into memory; `format` names qemu's driver where its probe cannot
 * (a fixed VHD has its footer only at the end, which qemu does not probe for).
 */
export async function qemuRaw(dir: string, image: string, format?: string): Promise<Buffer> {
  const out = join(dir, `qemu-${Math.random().toString(36).slice(2)}.raw`);
  await qemuImg("convert", ...(format ? ["-f", format] : []), "-O", "raw", image, out);
  return readFile(out);
}

/** Checks the map covers the disk exactly, in order, with no empty extents. */
export function assertCovers(extents: readonly Extent[], size: number): void {
  let pos = 0;
  for (const e of extents) {
    assert.equal(e.offset, pos, "extents are contiguous");
    assert.ok(e.length > 0, "no empty extents");
    pos += e.length;
  }
  assert.equal(pos, size, "extents cover the disk");
}

/** Data in `disk` lies only inside the map's data extents (zero and unallocated ranges read as zeros). */
export function assertZerosOutsideData(disk: Buffer, extents: readonly Extent[]): void {
  for (const e of extents) {
    if (e.kind === "data") continue;
    const slice = disk.subarray(e.offset, e.offset + e.length);
    assert.ok(slice.equals(Buffer.alloc(slice.length)), `${e.kind} extent at ${e.offset} reads as zeros`);
  }
}

/** Two raw files hold the same disk: same length, same bytes (qemu-img compare skips holes quickly). */
export async function assertSameRaw(a: string, b: string): Promise<void> {
  assert.equal((await stat(a)).size, (await stat(b)).size, `${a} and ${b} differ in size`);
  const r = await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", a, b]);
  assert.equal(r.code, 0, `${a} and ${b} differ: ${r.stdout}${r.stderr}`);
}

/** Opens `path` (format detected), runs `fn` on the source and closes it. */
export async function withSource<T>(
  path: string,
  fn: (s: ImageSource) => Promise<T>,
  driverOptions?: Record<string, string>,
): Promise<T> {
  const { source } = await openImage(path, { driverOptions });
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}

/** libvhdi's facts about a VHD or VHDX (`vhdiinfo`): media size, disk type and identifier. */
export async function vhdiinfo(path: string): Promise<{ mediaSize: number; diskType: string; identifier: string }> {
  const text = await runOk("vhdiinfo", [path]);
  const media = /Media size\s*:.*\((\d+) bytes\)/.exec(text);
  const type = /Disk type\s*:\s*(\S+)/.exec(text);
  const id = /Identifier\s*:\s*(\S+)/.exec(text);
  assert.ok(media && type && id, `unexpected vhdiinfo output:\n${text}`);
  return { mediaSize: Number(media[1]), diskType: type[1]!.toLowerCase(), identifier: id[1]! };
}
