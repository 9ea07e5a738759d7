/**
 * Guest disks for the guest-access suites, built by hand from real filesystems (mkfs.ext4 -d, mkfs.xfs and
 * mkfs.btrfs populated through a loop mount) and real tables (sfdisk). Needs root.
 */
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { makeRaw, run, runOk } from "./tools.js";

const MiB = 2 ** 20;

export const GUEST_UUIDS = {
  boot: "0b0a0000-1111-4222-8333-444455556666",
  root: "0f0f0000-1111-4222-8333-444455556666",
} as const;

export interface FilesystemSpec {
  readonly type: "ext4" | "xfs" | "btrfs";
  readonly sizeMiB: number;
  readonly uuid?: string;
  readonly label?: string;
  /** Files to put in it: path → content, or `{ link }` for a symlink, or `{ dir: true }`. */
  readonly files: Readonly<Record<string, string | { link: string } | { dir: true }>>;
}

export async function isRoot(): Promise<boolean> {
  return process.getuid?.() === 0;
}

export async function hasTool(name: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${name}`])).code === 0;
}

async function writeTree(root: string, files: FilesystemSpec["files"]): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const host = join(root, path);
    await mkdir(dirname(host), { recursive: true });
    if (typeof content === "string") await writeFile(host, content);
    else if ("link" in content) await symlink(content.link, host);
    else await mkdir(host, { recursive: true });
  }
}

/** Makes one filesystem image file holding `spec.files`. */
export async function makeFilesystem(path: string, spec: FilesystemSpec, scratchDir: string): Promise<void> {
  await makeRaw(path, spec.sizeMiB * MiB);
  const tree = await mkdtemp(join(scratchDir, "tree-"));
  try {
    await writeTree(tree, spec.files);
    await chmod(tree, 0o755);
    if (spec.type === "ext4") {
      const args = ["-F", "-q", "-t", "ext4", "-d", tree];
      if (spec.uuid) args.push("-U", spec.uuid);
      if (spec.label) args.push("-L", spec.label);
      await runOk("mkfs", [...args, path]);
      return;
    }
    const args = ["-f", "-q"];
    if (spec.uuid) args.push(...(spec.type === "xfs" ? ["-m", `uuid=${spec.uuid}`] : ["-U", spec.uuid]));
    if (spec.label) args.push("-L", spec.label);
    await runOk(`mkfs.${spec.type}`, [...args, path]);
    const mnt = await mkdtemp(join(scratchDir, "mnt-"));
    await runOk("mount", ["-o", "loop", path, mnt]);
    try {
      await runOk("cp", ["-a", `${tree}/.`, mnt]);
    } finally {
      await runOk("umount", [mnt]);
      await rm(mnt, { recursive: true, force: true });
    }
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}

export interface PartitionSpec {
  /** sfdisk type (83, 8e, 82, 5, L, S, a GUID); `fs` is copied in when given. */
  readonly type: string;
  readonly sizeMiB: number;
  readonly fs?: FilesystemSpec;
}

/**
 * A disk with the given table: for "dos", partitions after the third primary go into an extended partition
 * (so numbers 5, 6, … are logical). Filesystems are made separately and copied in sparsely.
 */
export async function makeGuestDisk(
  path: string,
  label: "dos" | "gpt",
  partitions: readonly PartitionSpec[],
  scratchDir: string,
): Promise<void> {
  const totalMiB = 2 + partitions.reduce((n, p) => n + p.sizeMiB + 1, 0) + 2;
  await makeRaw(path, totalMiB * MiB);
  const lines = [`label: ${label}`];
  const starts: number[] = [];
  let at = MiB / 512;
  const logical = label === "dos" && partitions.length > 4;
  partitions.forEach((p, i) => {
    if (logical && i === 3) {
      lines.push(`start=${at}, type=5`);
      at += MiB / 512;
    } else if (logical && i > 3) at += MiB / 512;
    starts.push(at);
    lines.push(`start=${at}, size=${(p.sizeMiB * MiB) / 512}, type=${p.type}`);
    at += (p.sizeMiB * MiB) / 512;
  });
  const script = lines.join("\n") + "\n";
  const r = await run("sh", ["-c", `printf '%s' '${script}' | sfdisk -q '${path}'`]);
  if (r.code !== 0) throw new Error(`sfdisk: ${r.stderr}`);
  for (const [i, p] of partitions.entries()) {
    if (!p.fs) continue;
    const fsPath = `${path}.p${i}`;
    await makeFilesystem(fsPath, p.fs, scratchDir);
    await runOk("dd", [
      `if=${fsPath}`,
      `of=${path}`,
      "bs=1M",
      `seek=${starts[i]! * 512}`,
      "oflag=seek_bytes",
      "conv=notrunc,sparse",
      "status=none",
    ]);
    await rm(fsPath);
  }
}

/** A Debian-like root tree (hand-made: no debootstrap here), with fstab lines supplied by the caller. */
export function debianRootFiles(fstab: string): FilesystemSpec["files"] {
  return {
    "etc/fstab": fstab,
    "etc/os-release":
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "etc/debian_version": "12.5\n",
    "etc/hostname": "guest\n",
    "etc/passwd":
      "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\n",
    "etc/cloud/cloud.cfg": "users:\n - default\n",
    "lib/systemd/systemd": "#!/bin/false\n",
    "sbin/init": { link: "/lib/systemd/systemd" },
    "usr/bin/apt-get": "",
    "var/lib/dpkg/status": "",
    "var/run": { link: "/run" },
    boot: { dir: true },
    home: { dir: true },
    srv: { dir: true },
  };
}

/** The secret line planted in the guest's shell history by `historyGuestDisk`: cleaning must remove it. */
export const PLANTED_HISTORY_LINE = "aws configure set aws_secret_access_key planted-secret";

/**
 * A one-partition (MBR, ext4 at 1 MiB) Debian-like guest whose init's ELF header says i386 and whose only kernel
 * has modules but no ENA driver, with a secret in root's shell history: what cleaning's inspection and
 * cleaning itself must find on the way to an EC2-family store.
 */
export async function historyGuestDisk(path: string, scratchDir: string): Promise<void> {
  const i386Init = "\x7fELF\x01\x01\x01" + "\0".repeat(9) + "\x02\0\x03\0" + "\0".repeat(44);
  const files = {
    ...debianRootFiles("/dev/sda1 / ext4 defaults 0 1\n"),
    "lib/systemd/systemd": i386Init,
    "boot/vmlinuz-5.10.0-30-686": "kernel",
    "lib/modules/5.10.0-30-686/modules.builtin": "kernel/fs/ext4/ext4.ko\n",
    "root/.bash_history": `${PLANTED_HISTORY_LINE}\n`,
  };
  await makeGuestDisk(path, "dos", [{ type: "83", sizeMiB: 48, fs: { type: "ext4", sizeMiB: 48, files } }], scratchDir);
}

/** A file of the ext4 filesystem at 1 MiB in a raw disk, read with debugfs (no mount): its text, or "". */
export async function historyGuestFile(disk: string, guestPath: string): Promise<string> {
  return (await run("debugfs", ["-R", `cat ${guestPath}`, `${disk}?offset=${MiB}`])).stdout;
}
