/**
 * Editing a VHD's checksummed structures in place (its footers, its dynamic header), checksums recomputed by a
 * sum written here, independently of the driver, so tests do not confirm the code with itself.
 */
import { open, stat } from "node:fs/promises";

/** The VHD checksum, written independently of the driver so tests do not confirm the code with itself. */
function vhdSum(buf: Buffer, checksumAt: number): number {
  let sum = 0;
  buf.forEach((b, i) => {
    if (i < checksumAt || i >= checksumAt + 4) sum += b;
  });
  return ~sum >>> 0;
}

/** Rewrites a 512-byte footer (or 1024-byte header) at `at` in `path` through `edit`, fixing its checksum. */
export async function editStructure(
  path: string,
  at: number,
  size: 512 | 1024,
  edit: (b: Buffer) => void,
  fixChecksum = true,
): Promise<void> {
  const h = await open(path, "r+");
  try {
    const buf = Buffer.alloc(size);
    await h.read(buf, 0, size, at);
    edit(buf);
    const checksumAt = size === 512 ? 64 : 36;
    if (fixChecksum) buf.writeUInt32BE(vhdSum(buf, checksumAt), checksumAt);
    await h.write(buf, 0, size, at);
  } finally {
    await h.close();
  }
}

/** Edits both footers of a dynamic VHD (the copy at 0 and the one at the end) the same way. */
export async function editFooters(path: string, edit: (b: Buffer) => void): Promise<void> {
  const size = (await stat(path)).size;
  await editStructure(path, 0, 512, edit);
  await editStructure(path, size - 512, 512, edit);
}
