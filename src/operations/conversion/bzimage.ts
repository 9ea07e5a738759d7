/**
 * The setup header of an x86 Linux kernel image (the "Linux/x86 Boot Protocol"): whether a file is a kernel a
 * PC boot loader can start (a bzImage, signature "HdrS" at 0x202), and the version string the kernel carries,
 * found through the pointer at 0x20E (protocol 2.00+; the string sits at that value + 0x200, inside the setup
 * sectors). A file's name says what someone called it; this says what it is.
 */

/** The setup code is at most 255 sectors after the boot sector: the version string lies within these bytes. */
export const SETUP_HEAD_BYTES = 256 * 512;

export interface BzImageHeader {
  /** Boot protocol version, e.g. 0x020f for 2.15. */
  readonly protocol: number;
  /** The kernel's version string ("6.1.0-18-amd64 (debian-kernel@…) #1 SMP …"), or null when it has none. */
  readonly versionString: string | null;
}

/** Parses the head of a file (SETUP_HEAD_BYTES, or all of a shorter file); null when it is not a bzImage. */
export function parseBzImageHeader(head: Buffer): BzImageHeader | null {
  if (head.length < 0x210) return null;
  if (head.readUInt16LE(0x1fe) !== 0xaa55 || head.toString("latin1", 0x202, 0x206) !== "HdrS") return null;
  const protocol = head.readUInt16LE(0x206);
  if (protocol < 0x0200) return null;
  // setup_sects of 0 means 4, for compatibility with the oldest images.
  const setupEnd = ((head[0x1f1] || 4) + 1) * 512;
  const pointer = head.readUInt16LE(0x20e);
  let versionString: string | null = null;
  const at = pointer + 0x200;
  if (pointer !== 0 && at < Math.min(setupEnd, head.length)) {
    const window = head.subarray(at, Math.min(at + 256, setupEnd, head.length));
    const end = window.indexOf(0);
    const text = window.toString("latin1", 0, end < 0 ? window.length : end);
    if (/^[\x20-\x7e]+$/.test(text)) versionString = text;
  }
  return { protocol, versionString };
}

/**
 * The release a version string starts with ("6.1.0-18-amd64"), as used in /boot and /lib/modules names; null
 * when it is not a plain name (it becomes part of a file name in the guest, so nothing like "../x" passes).
 */
export function kernelRelease(versionString: string): string | null {
  const release = versionString.split(" ")[0] ?? "";
  return /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/.test(release) && !release.includes("..") ? release : null;
}
