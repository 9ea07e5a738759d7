/**
 * Writes a cpio "newc" archive (magic 070701), the format the kernel unpacks into its initramfs: per entry a
 * 110-byte ASCII header of 8-hex-digit fields, the NUL-terminated name padded to 4 bytes, the data padded to 4
 * bytes, and a TRAILER!!! entry at the end. Entries are kept in memory: the archives made here are small.
 */

export interface CpioFile {
  /** Path inside the archive, relative ("scripts/init-top/ORDER"). */
  readonly name: string;
  /** Permission bits (0o644); the type comes from `data` (a file) or its absence (a directory). */
  readonly mode: number;
  /** The contents; absent for a directory. */
  readonly data?: Buffer;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
const hex = (n: number) => n.toString(16).padStart(8, "0");

function entry(name: string, mode: number, data: Buffer, ino: number, mtime: number): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, "latin1");
  const fields = [ino, mode, 0, 0, 1, mtime, data.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map(hex).join("")}`, "latin1");
  return [header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)];
}

/**
 * The archive holding `files` in order, then the trailer. Each file has one link (nlink 1), so the kernel
 * truncates a file of the same path an earlier archive made instead of treating it as a hard link.
 */
export function cpioArchive(files: readonly CpioFile[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  files.forEach((f, i) => {
    if (!/^[^/\0][^\0]*$/.test(f.name) || f.name.split("/").includes(".."))
      throw new Error(`cpio name "${f.name}" is not a plain relative path`);
    const type = f.data ? S_IFREG : S_IFDIR;
    parts.push(...entry(f.name, type | (f.mode & 0o7777), f.data ?? Buffer.alloc(0), i + 1, mtime));
  });
  parts.push(...entry("TRAILER!!!", 0, Buffer.alloc(0), 0, 0));
  return Buffer.concat(parts);
}
