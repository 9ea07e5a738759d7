/**
 * A fake snapshot as a sparse raw file (only its written blocks written, holes elsewhere), and back: what the
 * EC2 test server exports and imports, and what the tests compare exports and imports with (`qemu-img
 * compare`), without holding a whole volume in memory.
 */
import { open, stat } from "node:fs/promises";
import { EBS_BLOCK_SIZE, GIB, type FakeSnapshot } from "./fake-aws-account.js";

/** Writes `snapshot` to `path` as a raw disk of its volume size. */
export async function writeSnapshotRaw(snapshot: FakeSnapshot, path: string): Promise<void> {
  const file = await open(path, "w");
  try {
    for (const [index, data] of snapshot.blocks) await file.write(data, 0, data.length, index * EBS_BLOCK_SIZE);
    await file.truncate(snapshot.volumeSizeGiB * GIB);
  } finally {
    await file.close();
  }
}

/** The non-zero 512 KiB blocks of the raw disk at `path`, by index, and its size. */
export async function readRawBlocks(path: string): Promise<{ size: number; blocks: Map<number, Buffer> }> {
  const size = (await stat(path)).size;
  const blocks = new Map<number, Buffer>();
  const file = await open(path, "r");
  try {
    for (let index = 0; index * EBS_BLOCK_SIZE < size; index++) {
      const block = Buffer.alloc(EBS_BLOCK_SIZE);
      await file.read(block, 0, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE);
      if (block.some((b) => b !== 0)) blocks.set(index, block);
    }
  } finally {
    await file.close();
  }
  return { size, blocks };
}
