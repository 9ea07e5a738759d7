import { execFile } from "node:child_process";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);
const MiB = 2 ** 20;

export interface SampleImage {
  readonly path: string;
  readonly size: number;
  /** "ext4" when mkfs.ext4 was available to build a real filesystem, else "pattern". */
  readonly content: "ext4" | "pattern";
}

/** One MBR partition entry (LBA only; CHS fields set to the "use LBA" maximum as modern tools do). */
function mbrEntry(type: number, startLba: number, sectors: number): Buffer {
  const e = Buffer.alloc(16);
  e[0] = 0x80; // bootable
  e.writeUIntBE(0xfeffff, 1, 3);
  e[4] = type;
  e.writeUIntBE(0xfeffff, 5, 3);
  e.writeUInt32LE(startLba, 8);
  e.writeUInt32LE(sectors, 12);
  return e;
}

/**
 * Builds the sample guest disk the demo and tests convert: an MBR-partitioned raw disk whose partition holds
 * an ext4 filesystem with a small directory tree (text, binary and empty files), sparse elsewhere. Made
 * here, from nothing downloaded, so the quick start runs on a fresh machine with no cloud.
 */
export async function makeSampleImage(path: string, size = 256 * MiB): Promise<SampleImage> {
  const partStart = MiB;
  const partSize = size - partStart;
  const h = await open(path, "w");
  try {
    await h.truncate(size);
    const mbr = Buffer.alloc(512);
    mbrEntry(0x83, partStart / 512, partSize / 512).copy(mbr, 446);
    mbr.writeUInt32LE(0xc0ffee00, 440); // disk signature
    mbr.writeUInt16LE(0xaa55, 510);
    await h.write(mbr, 0, 512, 0);
  } finally {
    await h.close();
  }
  const tree = await mkdtemp(join(process.env.TMPDIR ?? "/tmp", "chromogenic-sample-"));
  try {
    await writeSampleTree(tree);
    try {
      await execFileP("mkfs.ext4", [
        "-F",
        "-q",
        "-L",
        "sample-root",
        "-E",
        `offset=${partStart}`,
        "-d",
        tree,
        path,
        `${partSize / 1024}k`,
      ]);
      return { path, size, content: "ext4" };
    } catch {
      await writePatternPartition(path, partStart);
      return { path, size, content: "pattern" };
    }
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}

/**
 * A small Debian-like guest tree: enough for guest inspection (os-release, fstab by label) and for cleaning to
 * find what it removes in real guests (logs, shell history, SSH host keys, machine-id, a DHCP lease, /tmp).
 */
async function writeSampleTree(root: string): Promise<void> {
  const files: Record<string, string> = {
    "etc/hostname": "sample-guest\n",
    "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
    "etc/fstab": "LABEL=sample-root / ext4 defaults 0 1\n",
    "etc/os-release":
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n' +
      'VERSION="12 (bookworm)"\nID=debian\n',
    "etc/debian_version": "12.8\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n",
    "etc/group": "root:x:0:\nalice:x:1000:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\nalice:$6$salt$hash:19000:0:99999:7:::\n",
    "etc/ssh/ssh_host_ed25519_key":
      "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n",
    "etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNhbXBsZQ root@sample-guest\n",
    "var/lib/dhcp/dhclient.eth0.leases": 'lease {\n  interface "eth0";\n  fixed-address 10.0.0.5;\n}\n',
    "root/.bash_history": "apt-get update\n",
    "home/alice/.bash_history": "ls\nsudo cat /etc/shadow\n",
    "tmp/build-leftover.txt": "scratch\n",
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), text);
  }
  await mkdir(join(root, "var/log/apt"), { recursive: true });
  const log = Array.from(
    { length: 20000 },
    (_, i) => `Nov 26 04:${String(i % 60).padStart(2, "0")} sample kernel: line ${i}\n`,
  );
  await writeFile(join(root, "var/log/syslog"), log.join(""));
  await writeFile(join(root, "var/log/apt/history.log"), "Start-Date: 2026-11-26  04:00:00\n");
  // Incompressible data, so the sample exercises both compressible and incompressible clusters.
  const noise = Buffer.alloc(3 * MiB);
  let x = 0x2545f491;
  for (let i = 0; i < noise.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    noise.writeInt32LE(x | 0, i);
  }
  await writeFile(join(root, "home/alice/random.bin"), noise);
}

/** Without mkfs.ext4, fill part of the partition with recognisable data so the demo still converts something. */
async function writePatternPartition(path: string, offset: number): Promise<void> {
  const h = await open(path, "r+");
  try {
    const block = Buffer.alloc(MiB);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31 + (i >> 9)) & 0xff;
    for (let i = 0; i < 8; i++) await h.write(block, 0, block.length, offset + i * 2 * MiB);
  } finally {
    await h.close();
  }
}
