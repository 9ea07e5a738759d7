import { spawn } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { GRUB_I386_PC_DIR } from "../boot/grub-core-image.js";

/** A BIOS boot area is at most this large (a BIOS boot partition is usually 1 MiB); larger ones are not read. */
export const MAX_BOOT_AREA = 8 * 2 ** 20;

/** What GRUB's 440-byte boot.img says in its messages; present in the MBR of every disk GRUB boots. */
const BOOT_IMG_MARK = Buffer.from("GRUB \0Geom\0Hard Disk\0Read\0 Error", "latin1");

/** Where grub-mkimage's i386-pc header puts the compressed payload's size, from the decompressor's start. */
const COMPRESSED_SIZE_AT = 0x08;
/** The decompressor's first bytes are a jump and size fields the image's build fills in: compared from here. */
const FIXED_FROM = 0x40;

export interface BootCodeText {
  /** The bytes of the area and, for a GRUB core image found in it, its decompressed kernel and config. */
  readonly text: Buffer;
  /** A GRUB core image was found and inflated. */
  readonly grubCore: boolean;
}

/** Whether the disk's MBR holds GRUB's boot.img. */
export async function mbrHasGrub(rawPath: string): Promise<boolean> {
  const fh = await open(rawPath, "r");
  try {
    const mbr = Buffer.alloc(512);
    await fh.read(mbr, 0, 512, 0);
    return mbr.includes(BOOT_IMG_MARK);
  } finally {
    await fh.close();
  }
}

async function readArea(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Raw LZMA1 as grub-mkimage writes it (no header; lc=3 lp=0 pb=2), through xz. The stream has no end mark. */
function inflateLzma(payload: Buffer, limit: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const xz = spawn("xz", ["--decompress", "--format=raw", "--lzma1=lc=3,lp=0,pb=2,dict=1MiB", "--stdout"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    const parts: Buffer[] = [];
    let size = 0;
    xz.stdout.on("data", (d: Buffer) => {
      if (size < limit) parts.push(d);
      size += d.length;
    });
    xz.on("error", () => resolve(Buffer.alloc(0)));
    // xz ends with "unexpected end of input" (no end mark), after writing everything: its output is the answer.
    xz.on("close", () => resolve(Buffer.concat(parts)));
    xz.stdin.on("error", () => undefined);
    xz.stdin.end(payload);
  });
}

/**
 * The text an area of boot code can name a filesystem in. GRUB's BIOS core image (in the gap after the MBR or in
 * a BIOS boot partition) keeps its embedded configuration — `search.fs_uuid UUID root` when grub-install or
 * grub-mkimage was told to find /boot by UUID — LZMA-compressed, so the area's bytes alone do not show it: a
 * core built with this host's GRUB decompressor is found by that decompressor's bytes and inflated.
 */
export async function bootCodeText(path: string, offset: number, length: number): Promise<BootCodeText> {
  const area = await readArea(path, offset, Math.min(length, MAX_BOOT_AREA));
  const decompressor = await readFile(join(GRUB_I386_PC_DIR, "lzma_decompress.img")).catch(() => null);
  if (decompressor && decompressor.length > FIXED_FROM) {
    const at = area.indexOf(decompressor.subarray(FIXED_FROM));
    if (at >= FIXED_FROM) {
      const start = at - FIXED_FROM;
      const compressed = area.readUInt32LE(start + COMPRESSED_SIZE_AT);
      const payload = area.subarray(start + decompressor.length, start + decompressor.length + compressed);
      const inflated = await inflateLzma(payload, MAX_BOOT_AREA);
      if (inflated.length > 0) return { text: Buffer.concat([area, inflated]), grubCore: true };
    }
  }
  return { text: area, grubCore: false };
}
