/**
 * The guest's architecture from its programs' ELF headers, on guest trees made here: the host's own /bin/true
 * (x86_64), hand-made headers for i386 and aarch64 and a big-endian machine EC2 has no word for, init reached
 * through the guest's symlinks, and what must not be read (a FIFO, a link out of the guest).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestArchitecture } from "../../../src/guest/inspect/guest-architecture.js";

/** The first 20 bytes of an ELF executable for `machine`, in the given byte order. */
function elfHeader(machine: number, bigEndian = false): Buffer {
  const header = Buffer.alloc(64);
  header.write("\x7fELF", 0, "latin1");
  header[4] = 2; // 64-bit
  header[5] = bigEndian ? 2 : 1;
  header[6] = 1;
  if (bigEndian) header.writeUInt16BE(machine, 18);
  else header.writeUInt16LE(machine, 18);
  return header;
}

async function guestTree(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "chromogenic-arch-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, "sbin"), { recursive: true });
  await mkdir(join(root, "lib/systemd"), { recursive: true });
  await mkdir(join(root, "bin"), { recursive: true });
  return root;
}

test("the host's own x86_64 program, reached through the guest's /sbin/init link, says x86_64", async (t) => {
  const root = await guestTree(t);
  await copyFile("/bin/true", join(root, "lib/systemd/systemd"));
  await symlink("/lib/systemd/systemd", join(root, "sbin/init"));
  const expected = process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : "unknown";
  assert.equal(await guestArchitecture(root), expected);
});

test("i386 and aarch64 headers give Glance's words; a machine EC2 has no word for is unknown", async (t) => {
  const root = await guestTree(t);
  const init = join(root, "sbin/init");
  await writeFile(init, elfHeader(3));
  assert.equal(await guestArchitecture(root), "i686");
  await writeFile(init, elfHeader(183));
  assert.equal(await guestArchitecture(root), "aarch64");
  await writeFile(init, elfHeader(22, true)); // EM_S390, big-endian
  assert.equal(await guestArchitecture(root), "unknown");
});

test("a shell script init is passed over for the next program; nothing ELF at all is unknown", async (t) => {
  const root = await guestTree(t);
  await writeFile(join(root, "sbin/init"), "#!/bin/sh\nexec /bin/sh\n");
  assert.equal(await guestArchitecture(root), "unknown");
  await writeFile(join(root, "bin/sh"), elfHeader(183));
  assert.equal(await guestArchitecture(root), "aarch64", "/bin/sh decides after a script init");
});

test("a FIFO is not read (the call returns), and an absolute link out of the guest stays inside it", async (t) => {
  const root = await guestTree(t);
  execFileSync("mkfifo", [join(root, "sbin/init")]);
  assert.equal(await guestArchitecture(root), "unknown", "a FIFO would block a read: it is passed over");
  await rm(join(root, "sbin/init"));
  // On the host, /bin/true is an ELF program; in the guest, /bin/true is this i386 header.
  await writeFile(join(root, "bin/true"), elfHeader(3));
  await symlink("../../../../../../bin/true", join(root, "sbin/init"));
  assert.equal(await guestArchitecture(root), "i686", "the link resolves inside the guest root");
});
