/**
 * The machine a guest's programs are built for, read from the ELF header of its init (or its shell): what a
 * cloud registering the image must be told (EC2's RegisterImage Architecture, Glance's `architecture`), found on
 * the disk rather than trusted from metadata that a migration may have lost or that was wrong to begin with.
 * Only the first 20 bytes of the file are read; the path is resolved inside the guest root.
 */
import { lstat, open } from "node:fs/promises";
import { resolveGuestPath } from "../guest-path.js";

/** In Glance's words (libosinfo's), which Nova's scheduler matches hosts by. */
export type GuestArchitecture = "x86_64" | "i686" | "aarch64" | "unknown";

/** Programs every Linux guest has, the first that is an ELF file decides. */
const PROGRAMS = ["/sbin/init", "/lib/systemd/systemd", "/usr/lib/systemd/systemd", "/bin/sh", "/bin/busybox"];

/** ELF e_machine values (System V ABI): EM_386, EM_X86_64, EM_AARCH64. */
const MACHINES: Readonly<Record<number, GuestArchitecture>> = { 3: "i686", 62: "x86_64", 183: "aarch64" };

export async function guestArchitecture(root: string): Promise<GuestArchitecture> {
  for (const program of PROGRAMS) {
    const machine = await elfMachine(root, program);
    if (machine !== undefined) return MACHINES[machine] ?? "unknown";
  }
  return "unknown";
}

/** The e_machine of a guest file that is an ELF executable, else undefined. */
async function elfMachine(root: string, guestPath: string): Promise<number | undefined> {
  try {
    const host = await resolveGuestPath(root, guestPath);
    // A FIFO or a device would block the read or read the host's device: regular files only.
    if (!(await lstat(host)).isFile()) return undefined;
    const file = await open(host, "r");
    try {
      const header = Buffer.alloc(20);
      const { bytesRead } = await file.read(header, 0, 20, 0);
      if (bytesRead < 20 || header.readUInt32BE(0) !== 0x7f454c46) return undefined;
      // EI_DATA (byte 5): 1 little-endian, 2 big-endian; e_machine is the half-word at 18.
      return header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
    } finally {
      await file.close();
    }
  } catch {
    return undefined;
  }
}
