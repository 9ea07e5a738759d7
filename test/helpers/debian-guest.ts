/**
 * Real guests for the cleaning proofs: a Debian bookworm root built by `mmdebstrap` from Debian's archive, and
 * a Rocky Linux 9 layout as a constructed tree (no RPM repository is reachable here), each with user data,
 * credentials, logs, cloud-init state and Atmosphere leftovers planted into it, on a GPT disk whose ext4 root
 * is made by `mkfs.ext4 -d` (nothing is mounted to build it).
 *
 * Built disks are cached across tests and runs under $CHROMOGENIC_TEST_GUEST_CACHE (default
 * /var/cache/chromogenic/test-guests), keyed by a hash of their recipe: the mmdebstrap root as a tarball, and
 * each variant's raw disk with a JSON file describing what was planted and what a clean must do to it. Use the
 * raw disk read-only: copy or convert it first.
 *
 * Planting never writes through a symlink of the guest tree: `var/run` in a Debian root is a link to `/run`,
 * and following it from the host would write into the host's /run. Every path component is checked with lstat.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { chmod, lchown, lstat, mkdir, open, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { lvmDiskHolding, type LvmNames } from "./lvm-disk.js";
import { runOk } from "./tools.js";

const MiB = 2 ** 20;

export function guestCacheDir(): string {
  return process.env.CHROMOGENIC_TEST_GUEST_CACHE ?? "/var/cache/chromogenic/test-guests";
}

/** The host directory the hostile guests' links aim at: the tests fill it with canaries that must survive. */
export const HOST_CANARY_DIR = "/var/tmp/chromogenic-canary";

/** The root filesystem's UUID in every guest here (fstab names it), and where its partition starts. */
export const ROOT_UUID = "c1ea0000-5eed-4b0b-8a55-000000000001";
export const PARTITION_OFFSET = MiB;

// ---------------------------------------------------------------------------------------------------------
// What a clean must do to each planted path

/**
 * The expected state of a path after a clean, compared with its state before:
 * - "removed": absent; "emptied": a regular file of size 0 with the same mode, owner and xattrs;
 * - "gone": removed or emptied; "kept": identical; "any": not asserted (the report/diff check still covers it);
 * - { content }: a regular file with exactly this content; { without, with }: these whole lines absent/present.
 */
export type Outcome =
  | "removed"
  | "emptied"
  | "gone"
  | "kept"
  | "any"
  | { readonly content: string }
  | { readonly without: readonly string[]; readonly with?: readonly string[] };

export interface Expectation {
  readonly path: string;
  readonly what: string;
  /** After `chromogenic clean` with the default operations. */
  readonly default: Outcome;
  /** After `chromogenic clean --profile atmosphere`. */
  readonly atmosphere: Outcome;
}

export interface BuiltGuest {
  /** The cached raw disk: never change it (copy or convert it first). */
  readonly raw: string;
  readonly name: string;
  readonly expectations: readonly Expectation[];
  /** Every guest path planted or edited, in planting order. */
  readonly planted: readonly string[];
  /** What the builder recorded about the guest (BuiltTree.details); empty for most guests. */
  readonly details: Readonly<Record<string, string>>;
  /** Seconds the build took (0 when it came from the cache). */
  readonly buildSeconds: number;
}

// ---------------------------------------------------------------------------------------------------------
// Planting into a root directory on the host

export type Plant =
  | {
      readonly op: "file";
      readonly path: string;
      readonly content: string;
      readonly mode?: number;
      readonly uid?: number;
      readonly gid?: number;
      readonly xattrs?: Readonly<Record<string, string>>;
      /** Make the file this long (a hole after the content). */
      readonly sparseSize?: number;
    }
  | { readonly op: "append"; readonly path: string; readonly content: string }
  | { readonly op: "replace-line"; readonly path: string; readonly from: string; readonly to: string }
  | { readonly op: "insert-before"; readonly path: string; readonly line: string; readonly content: string }
  | { readonly op: "dir"; readonly path: string; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly op: "symlink"; readonly path: string; readonly target: string }
  | { readonly op: "fifo"; readonly path: string }
  | { readonly op: "remove"; readonly path: string };

/**
 * The host path of `guestPath` under `root`, refusing to pass through a symlink (the guest's links are the
 * guest's business; from the host they could lead anywhere). Missing parents are created as root-owned 0755.
 */
async function plantPath(root: string, guestPath: string): Promise<string> {
  const parts = guestPath.split("/").filter(Boolean);
  let host = root;
  for (const [i, name] of parts.entries()) {
    if (name === "." || name === "..") throw new Error(`plant: ${guestPath}: no . or .. components`);
    host = join(host, name);
    if (i === parts.length - 1) break;
    const st = await lstat(host).catch(() => null);
    if (!st) await mkdir(host, { mode: 0o755 });
    else if (st.isSymbolicLink()) throw new Error(`plant: ${guestPath}: ${name} is a symlink in the guest tree`);
    else if (!st.isDirectory()) throw new Error(`plant: ${guestPath}: ${name} is not a directory`);
  }
  const last = await lstat(host).catch(() => null);
  if (last?.isSymbolicLink()) throw new Error(`plant: ${guestPath} is a symlink in the guest tree`);
  return host;
}

async function writeNoFollow(host: string, data: string | Buffer, flags: number): Promise<void> {
  const handle = await open(host, flags | constants.O_WRONLY | constants.O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

export async function plant(root: string, plants: readonly Plant[]): Promise<void> {
  for (const p of plants) {
    const host = await plantPath(root, p.path);
    switch (p.op) {
      case "file": {
        await writeNoFollow(host, p.content, constants.O_CREAT | constants.O_TRUNC);
        if (p.sparseSize !== undefined) {
          const h = await open(host, constants.O_WRONLY | constants.O_NOFOLLOW);
          await h.truncate(p.sparseSize).finally(() => h.close());
        }
        await chmod(host, p.mode ?? 0o644);
        await lchown(host, p.uid ?? 0, p.gid ?? 0);
        for (const [name, value] of Object.entries(p.xattrs ?? {}))
          await runOk("setfattr", ["-h", "-n", name, "-v", value, host]);
        break;
      }
      case "append":
        await writeNoFollow(host, p.content, constants.O_APPEND);
        break;
      case "replace-line":
      case "insert-before": {
        const text = await readFile(host, "utf8");
        const lines = text.split("\n");
        const at = lines.indexOf(p.op === "replace-line" ? p.from : p.line);
        if (at < 0)
          throw new Error(`plant: ${p.path} has no line ${JSON.stringify(p.op === "replace-line" ? p.from : p.line)}`);
        if (p.op === "replace-line") lines[at] = p.to;
        else lines.splice(at, 0, ...p.content.replace(/\n$/, "").split("\n"));
        await writeNoFollow(host, lines.join("\n"), constants.O_TRUNC);
        break;
      }
      case "dir":
        await mkdir(host, { recursive: false }).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== "EEXIST") throw e;
        });
        await chmod(host, p.mode ?? 0o755);
        await lchown(host, p.uid ?? 0, p.gid ?? 0);
        break;
      case "symlink":
        await rm(host, { recursive: true, force: true });
        await symlink(p.target, host);
        break;
      case "fifo":
        await rm(host, { recursive: true, force: true });
        await runOk("mkfifo", ["-m", "0640", host]);
        break;
      case "remove":
        await rm(host, { recursive: true, force: true });
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Cache, lock and disk

export function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * A lock directory held while a cache entry is built, so two test files building the same guest at once wait
 * for each other instead of building twice. A lock left by a dead process is taken over.
 */
async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(guestCacheDir(), { recursive: true });
  const lock = join(guestCacheDir(), `${name}.lock`);
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number(await readFile(join(lock, "pid"), "utf8").catch(() => "0"));
      let alive = pid > 0;
      try {
        if (alive) process.kill(pid, 0);
      } catch {
        alive = false;
      }
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (!alive && age > 2000) await rm(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/**
 * How a cached guest's disk is laid out. The cleaning guests use GPT with ext4; the Xen guests a bare
 * filesystem (a Xen root disk has no partition table) or an MBR disk (what pygrub reads), and XFS.
 */
export interface DiskLayout {
  /**
   * "gpt" or "mbr": one Linux partition from 1 MiB to 1 MiB before the end; "none": the filesystem alone;
   * "lvm": an MBR partition from 1 MiB holding an LVM group whose one volume holds the filesystem (lvm-disk.ts).
   */
  readonly table: "gpt" | "mbr" | "none" | "lvm";
  readonly fs: "ext4" | "xfs" | "btrfs";
  /** The group and volume names for "lvm". */
  readonly lvm?: LvmNames;
}

export const GPT_EXT4: DiskLayout = { table: "gpt", fs: "ext4" };

/**
 * A filesystem image of `sizeMiB` holding `tree`, with the root UUID fstab names. ext4 is made by mkfs.ext4 -d
 * (ownership, modes, xattrs, symlinks, FIFOs and holes are copied, nothing is mounted); mkfs.xfs cannot take a
 * directory, so XFS is filled through a loop mount with cp -a.
 */
async function filesystemFromTree(tree: string, output: string, sizeMiB: number, label: string, fs: DiskLayout["fs"]) {
  const h = await open(output, "w");
  await h.truncate(sizeMiB * MiB).finally(() => h.close());
  if (fs === "ext4") {
    await runOk("mkfs.ext4", ["-q", "-F", "-b", "4096", "-L", label, "-U", ROOT_UUID, "-d", tree, output]);
    await runOk("e2fsck", ["-fn", output]);
    return;
  }
  if (fs === "btrfs") {
    // --rootdir copies the tree (owners, modes, xattrs, links) without mounting anything.
    await runOk("mkfs.btrfs", ["-q", "-f", "-L", label, "-U", ROOT_UUID, "--rootdir", tree, output]);
    await runOk("btrfs", ["check", "--readonly", output]);
    return;
  }
  // XFS labels hold at most 12 characters.
  await runOk("mkfs.xfs", ["-q", "-f", "-L", label.slice(0, 12), "-m", `uuid=${ROOT_UUID}`, output]);
  const mnt = `${output}.mnt`;
  await mkdir(mnt);
  try {
    await runOk("mount", ["-o", "loop", output, mnt]);
    try {
      await runOk("cp", ["-a", `${tree}/.`, mnt]);
    } finally {
      await runOk("umount", [mnt]);
    }
  } finally {
    await rm(mnt, { recursive: true, force: true });
  }
  await runOk("xfs_repair", ["-n", output]);
}

/**
 * A disk holding `tree` in one filesystem of `sizeMiB`: with a partition table (`sizeMiB` + 2 MiB, the
 * partition at 1 MiB) or, for `table: "none"`, the filesystem alone.
 */
export async function diskFromTree(
  tree: string,
  output: string,
  sizeMiB: number,
  label: string,
  layout: DiskLayout = GPT_EXT4,
): Promise<void> {
  const part = `${output}.part`;
  const tmp = `${output}.tmp`;
  await rm(part, { force: true });
  await rm(tmp, { force: true });
  try {
    await filesystemFromTree(tree, part, sizeMiB, label, layout.fs);
    if (layout.table === "none") {
      await rename(part, output);
      return;
    }
    if (layout.table === "lvm") {
      if (!layout.lvm) throw new Error("diskFromTree: an LVM layout needs its group and volume names");
      await lvmDiskHolding(part, tmp, layout.lvm);
      await rename(tmp, output);
      return;
    }
    const h = await open(tmp, "w");
    await h.truncate((sizeMiB + 2) * MiB).finally(() => h.close());
    const table =
      layout.table === "gpt"
        ? `label: gpt\\nstart=2048, size=${(sizeMiB * MiB) / 512}, type=linux, name="root"\\n`
        : `label: dos\\nstart=2048, size=${(sizeMiB * MiB) / 512}, type=83\\n`;
    await runOk("sh", ["-c", `printf '${table}' | sfdisk --quiet '${tmp}'`]);
    await runOk("dd", [
      `if=${part}`,
      `of=${tmp}`,
      "bs=1M",
      `seek=${PARTITION_OFFSET}`,
      "oflag=seek_bytes",
      "conv=notrunc,sparse",
      "status=none",
    ]);
    await rename(tmp, output);
  } finally {
    await rm(part, { force: true });
    await rm(tmp, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The Debian base: mmdebstrap into a tarball (ownership and xattrs kept), cached

const MIRROR = process.env.DEBIAN_MIRROR ?? "http://deb.debian.org/debian";

/** What mmdebstrap builds a base root from; its hash names the cached tarball. */
export interface DebianBaseRecipe {
  readonly suite: string;
  readonly variant: string;
  readonly include: readonly string[];
  readonly dpkgopts: readonly string[];
  /** apt options beyond the retries every build gets. */
  readonly aptopts?: readonly string[];
  /** Shell commands mmdebstrap runs after installing, with the root in $1 (--customize-hook). */
  readonly customize?: readonly string[];
}

const DEBIAN_BASE: DebianBaseRecipe = {
  suite: "bookworm",
  variant: "minbase",
  // cloud-init makes the image regenerate its SSH host keys at boot (and is what /var/lib/cloud belongs to);
  // zsh is there so .zsh_history has a shell to belong to.
  include: ["openssh-server", "cloud-init", "sudo", "zsh", "python3-minimal"],
  dpkgopts: ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*", "path-exclude=/usr/share/locale/*"],
};

/** The dpkg filters every base shares: no manuals, documentation or translations. */
export const DEBIAN_LEAN_DPKGOPTS = DEBIAN_BASE.dpkgopts;

/** The mmdebstrap root of `recipe` as a tarball named `prefix`-HASH.tar (ownership and xattrs kept), cached. */
export async function debianBaseTar(
  recipe: DebianBaseRecipe = DEBIAN_BASE,
  prefix = "debian-base",
): Promise<{ tar: string; seconds: number }> {
  const key = hashOf(recipe);
  const tar = join(guestCacheDir(), `${prefix}-${key}.tar`);
  if (await exists(tar)) return { tar, seconds: 0 };
  return withLock(`${prefix}-${key}`, async () => {
    if (await exists(tar)) return { tar, seconds: 0 };
    const started = Date.now();
    const tmp = `${tar}.tmp.tar`;
    await runOk("mmdebstrap", [
      "--mode=root",
      "--quiet",
      `--variant=${recipe.variant}`,
      `--include=${recipe.include.join(",")}`,
      '--aptopt=Acquire::Retries "3"',
      ...(recipe.aptopts ?? []).map((o) => `--aptopt=${o}`),
      ...recipe.dpkgopts.map((o) => `--dpkgopt=${o}`),
      ...(recipe.customize ?? []).map((hook) => `--customize-hook=${hook}`),
      recipe.suite,
      tmp,
      MIRROR,
    ]);
    await rename(tmp, tar);
    return { tar, seconds: (Date.now() - started) / 1000 };
  });
}

export async function extract(tar: string, into: string): Promise<void> {
  await mkdir(into, { recursive: true });
  await runOk("tar", ["-x", "-f", tar, "-C", into, "--numeric-owner", "--xattrs", "--xattrs-include=*", "-p"]);
}

export async function readTreeFile(root: string, guestPath: string): Promise<string> {
  return readFile(await plantPath(root, guestPath), "utf8");
}

// ---------------------------------------------------------------------------------------------------------
// Builders both guests' plants and expectations use

/** Owner and group `uid` (each user has a group of its own id). */
const owner = (uid: number) => ({ uid, gid: uid });

/** A private (0600) file of user `uid`. */
function privateFile(path: string, content: string, uid: number): Plant {
  return { op: "file", path, content, mode: 0o600, ...owner(uid) };
}

/** A log readable by group adm (Debian's 0640 root:adm). */
function admLog(path: string, content: string): Plant {
  return { op: "file", path, content, mode: 0o640, uid: 0, gid: 4 };
}

/** A root-only log carrying an SELinux label of `type`. */
function labelledLog(path: string, content: string, type: string): Plant {
  return { op: "file", path, content, mode: 0o600, xattrs: { "security.selinux": `system_u:object_r:${type}:s0` } };
}

/** wtmp, btmp and lastlog with their usual modes, group `utmpGid` (43 on Debian, 22 on Rocky). */
function loginRecordPlants(utmpGid: number, content: { wtmp: string; btmp: string; lastlog: string }): Plant[] {
  return [
    { op: "file", path: "/var/log/wtmp", content: content.wtmp, mode: 0o664, uid: 0, gid: utmpGid },
    { op: "file", path: "/var/log/btmp", content: content.btmp, mode: 0o660, uid: 0, gid: utmpGid },
    { op: "file", path: "/var/log/lastlog", content: content.lastlog, mode: 0o664, uid: 0, gid: utmpGid },
  ];
}

/** What a clean must do to `path`: `dflt` by default, `atmosphere` (the same unless given) with that profile. */
function expect(path: string, what: string, dflt: Outcome, atmosphere: Outcome = dflt): Expectation {
  return { path, what, default: dflt, atmosphere };
}

/** The SSH host keys are removed; `regenerator` is what makes new ones at the next boot. */
function sshHostKeyExpectations(regenerator: string): Expectation[] {
  return ["rsa", "ecdsa", "ed25519"].flatMap((k) => [
    expect(`/etc/ssh/ssh_host_${k}_key`, `ssh host key (${regenerator} regenerates)`, "removed"),
    expect(`/etc/ssh/ssh_host_${k}_key.pub`, `ssh host key (${regenerator} regenerates)`, "removed"),
  ]);
}

const LOGIN_RECORD_EXPECTATIONS = ["/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog"].map((path) =>
  expect(path, "login records", "emptied"),
);

const CLOUD_INIT_STATE_EXPECTATIONS = [
  "/var/lib/cloud/instance",
  "/var/lib/cloud/instances",
  "/var/lib/cloud/data",
].map((path) => expect(path, "cloud-init state", "removed"));

// ---------------------------------------------------------------------------------------------------------
// What is planted into the Debian guest

const SSH_KEY_ALICE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmvX4Tv7Qp1Y0Ld8Yc2l4m5f6J7k8L9n0P1q2R3s4T5 alice@laptop";
const SSH_KEY_BOB = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7bobsKeyMaterialOnlyForTests== bob@desk";
const SSH_KEY_ROOT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAtmoDeployKeyForTestsOnly000000000000000 atmo@deploy";

export const ATMO_SUDOERS_BLOCK = [
  "## Atmosphere System",
  "alice ALL=(ALL) NOPASSWD: ALL",
  "atmo_user ALL=(ALL) NOPASSWD: ALL",
  "## End Atmosphere System",
];

/** The sudoers the Debian guest gets, with the lines a correct clean leaves (`kept`). */
function sudoers(): { planted: string; cleaned: string } {
  const head = [
    "#",
    "# This file MUST be edited with the 'visudo' command as root.",
    "#",
    "Defaults\tenv_reset",
    "Defaults\tmail_badpass",
    'Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
    "",
    "# User privilege specification",
    "root\tALL=(ALL:ALL) ALL",
  ];
  const middle = ["# Allow members of group sudo to execute any command", "%sudo\tALL=(ALL:ALL) ALL", ""];
  const nagios = ["# Begin Nagios", "nagios ALL=(ALL) NOPASSWD: /usr/lib/nagios/plugins/", "# End Nagios"];
  const sensu = ["# Begin Sensu", "sensu ALL=(ALL) NOPASSWD: ALL", "# End Sensu"];
  const tail = ["## Read drop-in files from /etc/sudoers.d", "#includedir /etc/sudoers.d", ""];
  // Two blocks right after a line (no blank between: the original's regex joined them), a block between two
  // kept lines, and the include directive after them: every one of the original's defects has a witness here.
  const planted = [...head, ...ATMO_SUDOERS_BLOCK, ...middle, ...nagios, ...sensu, ...tail].join("\n");
  const cleaned = [...head, ...middle, ...tail].join("\n");
  return { planted, cleaned };
}

const SHADOW_LINES = [
  "alice:$y$j9T$aliceSaltAliceSalt$aliceHashAliceHashAliceHashAliceHash0:20000:0:99999:7:::",
  "bob:!:20000:0:99999:7:::",
];

const SSHD_BLOCK =
  "## Atmosphere System\nAllowGroups users root core-services\nPermitRootLogin without-password\n## End Atmosphere System\n";
const SKEL_BLOCK = "## Atmosphere System\nexport ATMO_HOME=/opt/cyverse\n## End Atmosphere System\n";

function debianPlants(): Plant[] {
  const u = owner;
  return [
    // Two users, uid 1000 and 1001, in every account file.
    {
      op: "append",
      path: "/etc/passwd",
      content: "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\nbob:x:1001:1001:Bob,,,:/home/bob:/usr/bin/zsh\n",
    },
    { op: "append", path: "/etc/shadow", content: SHADOW_LINES.map((l) => `${l}\n`).join("") },
    { op: "append", path: "/etc/group", content: "alice:x:1000:\nbob:x:1001:\n" },
    { op: "replace-line", path: "/etc/group", from: "users:x:100:", to: "users:x:100:alice,bob" },
    { op: "replace-line", path: "/etc/group", from: "sudo:x:27:", to: "sudo:x:27:alice" },
    { op: "append", path: "/etc/gshadow", content: "alice:!::\nbob:!::\n" },
    { op: "replace-line", path: "/etc/gshadow", from: "users:*::", to: "users:*::alice,bob" },
    { op: "replace-line", path: "/etc/gshadow", from: "sudo:*::", to: "sudo:*::alice" },
    { op: "append", path: "/etc/subuid", content: "alice:100000:65536\nbob:165536:65536\n" },
    { op: "append", path: "/etc/subgid", content: "alice:100000:65536\nbob:165536:65536\n" },
    {
      op: "file",
      path: "/etc/passwd-",
      content: "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    },
    // Home directories with data that is the user's, credentials and histories.
    { op: "dir", path: "/home/alice", mode: 0o750, ...u(1000) },
    privateFile("/home/alice/notes.txt", "remember the milk\n", 1000),
    privateFile(
      "/home/alice/.bash_history",
      "ls -la\nsudo cat /etc/shadow\nexport AWS_SECRET_ACCESS_KEY=abc123\n",
      1000,
    ),
    privateFile("/home/alice/.python_history", "import os\nos.environ['TOKEN']\n", 1000),
    { op: "dir", path: "/home/alice/.ssh", mode: 0o700, ...u(1000) },
    privateFile("/home/alice/.ssh/authorized_keys", `${SSH_KEY_ALICE}\n`, 1000),
    privateFile(
      "/home/alice/.ssh/id_ed25519",
      "-----BEGIN OPENSSH PRIVATE KEY-----\nalice-private\n-----END OPENSSH PRIVATE KEY-----\n",
      1000,
    ),
    { op: "dir", path: "/home/bob", mode: 0o755, ...u(1001) },
    { op: "file", path: "/home/bob/projects/data.csv", content: "a,b\n1,2\n", mode: 0o644, ...u(1001) },
    privateFile("/home/bob/.zsh_history", ": 1700000000:0;vim /etc/hosts\n: 1700000001:0;ssh prod\n", 1001),
    { op: "dir", path: "/home/bob/.ssh", mode: 0o700, ...u(1001) },
    privateFile("/home/bob/.ssh/authorized_keys", `${SSH_KEY_BOB}\n`, 1001),
    { op: "file", path: "/root/.bash_history", content: "passwd\nvirsh list\n", mode: 0o600 },
    { op: "file", path: "/root/.zsh_history", content: ": 1700000002:0;reboot\n", mode: 0o600 },
    { op: "file", path: "/root/.python_history", content: "print('root')\n", mode: 0o600 },
    { op: "dir", path: "/root/.ssh", mode: 0o700 },
    {
      op: "file",
      path: "/root/.ssh/authorized_keys",
      content: `#Injected by Chromogenic\n${SSH_KEY_ROOT}\n`,
      mode: 0o600,
    },
    // Logs, with the modes, owners and an xattr that emptying must keep.
    admLog("/var/log/syslog", "Nov 26 07:00:00 guest sshd[1]: Accepted publickey for alice\n".repeat(50)),
    admLog("/var/log/syslog.1", "older syslog\n"),
    admLog("/var/log/auth.log", "Nov 26 07:00:01 guest sudo: alice : COMMAND=/bin/cat /etc/shadow\n"),
    admLog("/var/log/cloud-init.log", "cloud-init: running modules for config\n"),
    admLog("/var/log/cloud-init-output.log", "Cloud-init v. 22.4.2 finished\n"),
    { op: "dir", path: "/var/log/myapp", mode: 0o750, ...u(1000) },
    {
      op: "file",
      path: "/var/log/myapp/app.log",
      content: "user alice logged in with token t0k3n\n",
      mode: 0o640,
      ...u(1000),
      xattrs: { "user.origin": "myapp", "user.retention": "30d" },
    },
    ...loginRecordPlants(43, {
      wtmp: "\u0007\u0000\u0000\u0000wtmp-record-alice-pts/0",
      btmp: "\u0006\u0000\u0000\u0000btmp-record-mallory",
      lastlog: "lastlog-alice-from-10.0.0.5",
    }),
    {
      op: "file",
      path: "/var/log/apt/history.log",
      content: "Start-Date: 2026-11-26\nCommandline: apt-get install vim\n",
      mode: 0o644,
    },
    // cloud-init state, as `cloud-init clean` would find it.
    {
      op: "file",
      path: "/var/lib/cloud/instances/i-0abc123/user-data.txt",
      content: "#cloud-config\npassword: hunter2\n",
      mode: 0o600,
    },
    { op: "file", path: "/var/lib/cloud/instances/i-0abc123/obj.pkl", content: "pickled-datasource", mode: 0o600 },
    { op: "file", path: "/var/lib/cloud/instances/i-0abc123/boot-finished", content: "123.45\n" },
    { op: "file", path: "/var/lib/cloud/instances/i-0abc123/sem/config_ssh", content: "ran\n" },
    { op: "symlink", path: "/var/lib/cloud/instance", target: "/var/lib/cloud/instances/i-0abc123" },
    { op: "file", path: "/var/lib/cloud/data/instance-id", content: "i-0abc123\n" },
    { op: "file", path: "/var/lib/cloud/data/previous-instance-id", content: "i-0abc123\n" },
    { op: "file", path: "/var/lib/cloud/data/status.json", content: '{"v1": {"datasource": "DataSourceOpenStack"}}\n' },
    { op: "file", path: "/var/lib/cloud/sem/config_scripts_per_once.once", content: "ran\n" },
    // Atmosphere's marked blocks, and its files.
    { op: "file", path: "/etc/sudoers", content: sudoers().planted, mode: 0o440 },
    {
      op: "insert-before",
      path: "/etc/ssh/sshd_config",
      line: "# Example of overriding settings on a per-user basis",
      content: SSHD_BLOCK,
    },
    { op: "file", path: "/var/log/atmo/deploy.log", content: "deploying instance for alice\n", mode: 0o644 },
    { op: "file", path: "/var/log/atmo/post-scripts/boot.log", content: "post script ran\n", mode: 0o644 },
    { op: "file", path: "/opt/cyverse/tmp/token", content: "atmo-token\n", mode: 0o600 },
    { op: "file", path: "/opt/cyverse/bin/atmo-agent", content: "#!/bin/sh\n", mode: 0o755 },
    { op: "file", path: "/etc/rc.local.atmo", content: "#!/bin/sh\n/usr/sbin/atmo_boot.py\n", mode: 0o755 },
    { op: "file", path: "/usr/sbin/atmo_boot.py", content: "#!/usr/bin/env python3\nprint('atmo')\n", mode: 0o755 },
    // Machine identity.
    {
      op: "file",
      path: "/etc/udev/rules.d/70-persistent-net.rules",
      content: 'SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\n',
    },
    { op: "file", path: "/etc/machine-id", content: "0f1e2d3c4b5a69788796a5b4c3d2e1f0\n", mode: 0o444 },
    { op: "symlink", path: "/var/lib/dbus/machine-id", target: "/etc/machine-id" },
    // What other virt-sysprep default operations look for.
    { op: "file", path: "/tmp/build-artifact", content: "tmp\n" },
    { op: "file", path: "/var/tmp/session.cache", content: "var tmp\n" },
    { op: "file", path: "/var/cache/apt/archives/vim_9.0_amd64.deb", content: "deb" },
    {
      op: "file",
      path: "/var/spool/cron/crontabs/alice",
      content: "* * * * * /home/alice/bin/job\n",
      mode: 0o600,
      uid: 1000,
      gid: 0,
    },
    { op: "file", path: "/var/lib/dhcp/dhclient.eth0.leases", content: "lease { fixed-address 10.0.0.5; }\n" },
    { op: "file", path: "/var/mail/alice", content: "From root\nSubject: hi\n", mode: 0o660, uid: 1000, gid: 8 },
    { op: "file", path: "/etc/krb5.keytab", content: "keytab", mode: 0o600 },
    { op: "file", path: "/etc/hosts~", content: "127.0.0.1 old\n" },
    { op: "file", path: "/run/utmp", content: "utmp-record", mode: 0o664, uid: 0, gid: 43 },
    // Kept: things a clean must not touch.
    { op: "file", path: "/srv/www/index.html", content: "<h1>kept</h1>\n" },
    { op: "file", path: "/etc/fstab", content: `UUID=${ROOT_UUID} / ext4 errors=remount-ro 0 1\n` },
    { op: "file", path: "/etc/hostname", content: "atmo-vm-42\n" },
  ];
}

/** The skel block goes first in the file: a block on line 1 is one the original never removed. */
async function plantSkel(root: string): Promise<string> {
  const host = await plantPath(root, "/etc/skel/.bashrc");
  const original = await readFile(host, "utf8");
  await writeNoFollow(host, SKEL_BLOCK + original, constants.O_TRUNC);
  return original;
}

function debianExpectations(originals: Readonly<Record<string, string>>): Expectation[] {
  const o = (path: string) => originals[path]!;
  const lines = (path: string) => o(path).split("\n").filter(Boolean);
  const e = expect;
  return [
    // accounts: kept by default (user-account is opt-in), removed by the atmosphere profile
    e("/etc/passwd", "accounts", "kept", { content: o("/etc/passwd") }),
    e("/etc/shadow", "accounts (root's line may get a new password)", "kept", {
      without: SHADOW_LINES,
      with: lines("/etc/shadow").filter((l) => !l.startsWith("root:")),
    }),
    e("/etc/group", "accounts and memberships", "kept", { content: o("/etc/group") }),
    e("/etc/gshadow", "accounts and memberships", "kept", { content: o("/etc/gshadow") }),
    e("/etc/subuid", "subordinate ids", "kept", { content: o("/etc/subuid") }),
    e("/etc/subgid", "subordinate ids", "kept", { content: o("/etc/subgid") }),
    e("/etc/passwd-", "account file backup", "removed"),
    e("/home/alice", "home directory", "any", "removed"),
    e("/home/bob", "home directory", "any", "removed"),
    e("/home/alice/notes.txt", "user data", "kept", "removed"),
    e("/home/bob/projects/data.csv", "user data", "kept", "removed"),
    // histories and credentials
    e("/home/alice/.bash_history", "bash history", "removed"),
    e("/home/alice/.python_history", "python history", "gone", "removed"),
    e("/home/bob/.zsh_history", "zsh history", "removed"),
    e("/root/.bash_history", "bash history", "removed"),
    e("/root/.zsh_history", "zsh history", "removed"),
    e("/root/.python_history", "python history", "gone"),
    e("/home/alice/.ssh", "ssh user dir", "removed"),
    e("/home/bob/.ssh", "ssh user dir", "removed"),
    e("/root/.ssh", "ssh user dir", "removed"),
    ...sshHostKeyExpectations("cloud-init"),
    // logs: emptied in place
    e("/var/log/syslog", "log", "emptied"),
    e("/var/log/syslog.1", "rotated log", "gone"),
    e("/var/log/auth.log", "log", "emptied"),
    e("/var/log/cloud-init.log", "log", "emptied"),
    e("/var/log/cloud-init-output.log", "log", "emptied"),
    e("/var/log/myapp/app.log", "log outside virt-sysprep's globs, with xattrs", "emptied"),
    ...LOGIN_RECORD_EXPECTATIONS,
    e("/var/log/apt/history.log", "log", "emptied"),
    // cloud-init state
    ...CLOUD_INIT_STATE_EXPECTATIONS,
    e("/var/lib/cloud/sem", "cloud-init state", "removed"),
    // Atmosphere blocks and files
    e("/etc/sudoers", "Atmosphere/Nagios/Sensu blocks", "any", { content: sudoers().cleaned }),
    e("/etc/ssh/sshd_config", "Atmosphere block", "any", { content: o("/etc/ssh/sshd_config") }),
    e("/etc/skel/.bashrc", "Atmosphere block on line 1", "any", { content: o("/etc/skel/.bashrc") }),
    e("/etc/cloud/cloud.cfg", "cloud user disabled, root kept usable", "any", {
      without: ["disable_root: true", "users:"],
    }),
    e("/var/log/atmo", "Atmosphere deploy logs", "any", "removed"),
    e("/var/log/atmo/deploy.log", "Atmosphere deploy log", "gone", "removed"),
    e("/opt/cyverse", "Atmosphere files", "any", "removed"),
    e("/etc/rc.local.atmo", "Atmosphere files", "any", "removed"),
    e("/usr/sbin/atmo_boot.py", "Atmosphere files", "any", "removed"),
    // machine identity
    e("/etc/udev/rules.d/70-persistent-net.rules", "udev persistent net", "gone"),
    e("/etc/machine-id", "machine id (truncated, not removed)", "emptied"),
    // other virt-sysprep defaults
    e("/tmp/build-artifact", "tmp files", "removed"),
    e("/var/tmp/session.cache", "tmp files", "removed"),
    e("/var/cache/apt/archives/vim_9.0_amd64.deb", "package cache", "removed"),
    e("/var/spool/cron/crontabs/alice", "cron spool", "removed"),
    e("/var/lib/dhcp/dhclient.eth0.leases", "dhcp leases", "removed"),
    e("/var/mail/alice", "mail spool", "removed"),
    e("/etc/krb5.keytab", "kerberos host keytab", "removed"),
    e("/etc/hosts~", "editor backup", "removed"),
    e("/run/utmp", "utmp", "gone"),
    // kept
    e("/srv/www/index.html", "site data", "kept"),
    e("/etc/fstab", "fstab", "kept"),
    e("/etc/hostname", "hostname", "any"),
  ];
}

/** Extra plants for the hostile variants; links aim at HOST_CANARY_DIR, which the tests fill with canaries. */
export function hostilePlants(kind: "links" | "varlog-to-etc"): Plant[] {
  const up = "../".repeat(12);
  if (kind === "varlog-to-etc") {
    return [
      { op: "remove", path: "/var/log" },
      { op: "symlink", path: "/var/log", target: "/etc" },
    ];
  }
  return [
    { op: "symlink", path: "/var/log/abs-link.log", target: `${HOST_CANARY_DIR}/host.log` },
    { op: "symlink", path: "/var/log/rel-link.log", target: `${up}var/tmp/chromogenic-canary/host.log` },
    { op: "symlink", path: "/var/log/dir-link", target: `${up}${HOST_CANARY_DIR.slice(1)}/logdir` },
    { op: "symlink", path: "/root/.bash_history", target: `${HOST_CANARY_DIR}/history` },
    { op: "symlink", path: "/home/alice/.ssh", target: `${up}${HOST_CANARY_DIR.slice(1)}/ssh` },
    { op: "symlink", path: "/var/lib/cloud/instances", target: `${HOST_CANARY_DIR}/cloud` },
    { op: "symlink", path: "/tmp/escape", target: HOST_CANARY_DIR },
    { op: "symlink", path: "/etc/udev/rules.d/70-persistent-net.rules", target: `${HOST_CANARY_DIR}/host.log` },
    { op: "symlink", path: "/var/log/loop-a.log", target: "loop-b.log" },
    { op: "symlink", path: "/var/log/loop-b.log", target: "loop-a.log" },
    { op: "fifo", path: "/var/log/fifo.log" },
    { op: "fifo", path: "/var/log/auth.log" },
    { op: "remove", path: "/etc/machine-id" },
    { op: "dir", path: "/etc/machine-id" },
    { op: "file", path: "/etc/machine-id/inside", content: "a directory where a file is expected\n" },
    { op: "remove", path: "/home/bob/.zsh_history" },
    { op: "dir", path: "/home/bob/.zsh_history" },
    {
      op: "file",
      path: "/var/log/huge.log",
      content: "start of a huge sparse log\n",
      sparseSize: 16 * 2 ** 30,
      mode: 0o640,
      uid: 0,
      gid: 4,
    },
    { op: "file", path: "/var/log/new\nline.log", content: "a log whose name has a newline\n", mode: 0o640 },
    { op: "file", path: "/tmp/new\nline", content: "tmp file with a newline\n" },
    privateFile("/home/alice/.bash_history\nfake", "not a history\n", 1000),
  ];
}

export type DebianVariant = "planted" | "hostile" | "varlog-to-etc";

const HELPER_VERSION = 3;

/**
 * The planted Debian guest (or a hostile variant of it) as a cached raw disk. First build: about 35 s of
 * mmdebstrap (once) plus about 10 s per variant.
 */
export async function debianGuest(variant: DebianVariant = "planted"): Promise<BuiltGuest> {
  const started = Date.now();
  const base = await debianBaseTar();
  const plants = [
    ...debianPlants(),
    ...(variant === "hostile"
      ? hostilePlants("links")
      : variant === "varlog-to-etc"
        ? hostilePlants("varlog-to-etc")
        : []),
  ];
  const key = hashOf({ base: DEBIAN_BASE, plants, skel: SKEL_BLOCK, version: HELPER_VERSION });
  const name = `debian-${variant}-${key}`;
  return cachedGuest(name, started, async (tree) => {
    await extract(base.tar, tree);
    const originals: Record<string, string> = {};
    for (const p of [
      "/etc/passwd",
      "/etc/shadow",
      "/etc/group",
      "/etc/gshadow",
      "/etc/subuid",
      "/etc/subgid",
      "/etc/ssh/sshd_config",
    ])
      originals[p] = await readTreeFile(tree, p);
    originals["/etc/skel/.bashrc"] = await plantSkel(tree);
    await plant(tree, plants);
    return {
      expectations: debianExpectations(originals),
      planted: ["/etc/skel/.bashrc", ...plants.map((p) => p.path)],
      sizeMiB: 1024,
    };
  });
}

/** What a guest builder made of its tree: the disk is then made from the tree by diskFromTree. */
export interface BuiltTree {
  readonly expectations: Expectation[];
  readonly planted: string[];
  readonly sizeMiB: number;
  /** Default GPT with ext4. */
  readonly layout?: DiskLayout;
  /** Facts about the guest a test needs (a kernel version, say), kept in the cache beside the disk. */
  readonly details?: Readonly<Record<string, string>>;
}

/**
 * The guest `name` from the cache, or built by `build` into a fresh tree and cached. Whatever else `build`
 * puts in the cache must be in place before it returns: the disk and its JSON appear last.
 */
export async function cachedGuest(
  name: string,
  started: number,
  build: (tree: string) => Promise<BuiltTree>,
): Promise<BuiltGuest> {
  const raw = join(guestCacheDir(), `${name}.raw`);
  const meta = join(guestCacheDir(), `${name}.json`);
  const load = async (buildSeconds: number): Promise<BuiltGuest> => {
    const m = JSON.parse(await readFile(meta, "utf8")) as Pick<BuiltGuest, "expectations" | "planted" | "details">;
    return { raw, name, expectations: m.expectations, planted: m.planted, details: m.details ?? {}, buildSeconds };
  };
  if ((await exists(raw)) && (await exists(meta))) return load(0);
  await mkdir(guestCacheDir(), { recursive: true });
  return withLock(name, async () => {
    if ((await exists(raw)) && (await exists(meta))) return load(0);
    const tree = join(guestCacheDir(), `${name}.tree`);
    await rm(tree, { recursive: true, force: true });
    try {
      const built = await build(tree);
      await writeFile(
        `${meta}.tmp`,
        JSON.stringify({ expectations: built.expectations, planted: built.planted, details: built.details }, null, 1),
      );
      await diskFromTree(tree, raw + ".build", built.sizeMiB, name.slice(0, 16), built.layout);
      await rename(`${meta}.tmp`, meta);
      await rename(raw + ".build", raw);
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
    return load((Date.now() - started) / 1000);
  });
}

// ---------------------------------------------------------------------------------------------------------
// The RHEL-family guest: a constructed Rocky Linux 9 tree

const IFCFG = [
  "TYPE=Ethernet",
  "BOOTPROTO=dhcp",
  "DEVICE=eth0",
  "ONBOOT=yes",
  "HWADDR=52:54:00:ab:cd:ef",
  "DHCP_HOSTNAME=rocky-builder",
  "PERSISTENT_DHCLIENT=yes",
  "",
];

function rhelPlants(): Plant[] {
  const r = owner;
  return [
    { op: "symlink", path: "/bin", target: "usr/bin" },
    { op: "symlink", path: "/sbin", target: "usr/sbin" },
    { op: "symlink", path: "/lib", target: "usr/lib" },
    { op: "symlink", path: "/lib64", target: "usr/lib64" },
    { op: "dir", path: "/usr/lib64" },
    { op: "dir", path: "/usr/sbin" },
    { op: "file", path: "/usr/lib/systemd/systemd", content: "#!/bin/false\n", mode: 0o755 },
    { op: "symlink", path: "/usr/sbin/init", target: "../lib/systemd/systemd" },
    { op: "file", path: "/usr/bin/dnf", content: "#!/bin/false\n", mode: 0o755 },
    { op: "file", path: "/usr/bin/rpm", content: "#!/bin/false\n", mode: 0o755 },
    { op: "file", path: "/usr/sbin/sshd", content: "#!/bin/false\n", mode: 0o755 },
    {
      op: "file",
      path: "/etc/os-release",
      content:
        'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n',
    },
    { op: "file", path: "/etc/redhat-release", content: "Rocky Linux release 9.3 (Blue Onyx)\n" },
    { op: "file", path: "/etc/rocky-release", content: "Rocky Linux release 9.3 (Blue Onyx)\n" },
    { op: "file", path: "/etc/fstab", content: `UUID=${ROOT_UUID} / ext4 defaults 1 1\n` },
    { op: "file", path: "/etc/hostname", content: "rocky-builder\n" },
    {
      op: "file",
      path: "/etc/passwd",
      content:
        "root:x:0:0:root:/root:/bin/bash\nsshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\nrocky:x:1000:1000:Cloud User:/home/rocky:/bin/bash\n",
    },
    {
      op: "file",
      path: "/etc/shadow",
      content: "root:!!:19700:0:99999:7:::\nsshd:!!:19700::::::\nrocky:!!:19700:0:99999:7:::\n",
      mode: 0o000,
    },
    { op: "file", path: "/etc/group", content: "root:x:0:\nwheel:x:10:rocky\nsshd:x:74:\nrocky:x:1000:\n" },
    { op: "file", path: "/etc/gshadow", content: "root:::\nwheel:::rocky\nsshd:!::\nrocky:!::\n", mode: 0o000 },
    { op: "file", path: "/etc/login.defs", content: "UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\n" },
    { op: "dir", path: "/home/rocky", mode: 0o700, ...r(1000) },
    privateFile("/home/rocky/.bash_history", "sudo dnf update\n", 1000),
    { op: "dir", path: "/home/rocky/.ssh", mode: 0o700, ...r(1000) },
    privateFile("/home/rocky/.ssh/authorized_keys", `${SSH_KEY_ALICE}\n`, 1000),
    { op: "file", path: "/root/.bash_history", content: "setenforce 0\n", mode: 0o600 },
    { op: "file", path: "/etc/sysconfig/network-scripts/ifcfg-eth0", content: IFCFG.join("\n") },
    { op: "file", path: "/etc/sysconfig/selinux", content: "SELINUX=enforcing\nSELINUXTYPE=targeted\n" },
    { op: "file", path: "/etc/selinux/config", content: "SELINUX=enforcing\nSELINUXTYPE=targeted\n" },
    { op: "file", path: "/var/lib/rpm/rpmdb.sqlite", content: "SQLite format 3\u0000rpmdb" },
    { op: "file", path: "/var/lib/rpm/__db.001", content: "berkeley env" },
    { op: "file", path: "/var/lib/rpm/__db.002", content: "berkeley env" },
    { op: "file", path: "/var/cache/dnf/baseos-abc/repodata/repomd.xml", content: "<repomd/>\n" },
    { op: "file", path: "/var/cache/dnf/expired_repos.json", content: "[]\n" },
    { op: "file", path: "/var/cache/yum/x86_64/9/base/packages/bash.rpm", content: "rpm" },
    { op: "file", path: "/var/lib/yum/uuid", content: "5b6a1c7e-uuid\n" },
    {
      op: "file",
      path: "/usr/lib/systemd/system/sshd-keygen@.service",
      content:
        "[Unit]\nDescription=OpenSSH %i Server Key Generation\nConditionFileNotEmpty=|!/etc/ssh/ssh_host_%i_key\n",
    },
    {
      op: "file",
      path: "/usr/lib/systemd/system/sshd-keygen.target",
      content: "[Unit]\nWants=sshd-keygen@rsa.service sshd-keygen@ecdsa.service sshd-keygen@ed25519.service\n",
    },
    {
      op: "file",
      path: "/etc/ssh/sshd_config",
      content:
        "Include /etc/ssh/sshd_config.d/*.conf\n## Atmosphere System\nAllowGroups users root\n## End Atmosphere System\nSubsystem sftp /usr/libexec/openssh/sftp-server\n",
      mode: 0o600,
    },
    ...["rsa", "ecdsa", "ed25519"].flatMap((k): Plant[] => [
      { op: "file", path: `/etc/ssh/ssh_host_${k}_key`, content: `${k} private\n`, mode: 0o640, uid: 0, gid: 994 },
      { op: "file", path: `/etc/ssh/ssh_host_${k}_key.pub`, content: `${k} public\n`, mode: 0o644 },
    ]),
    labelledLog("/var/log/messages", "Nov 26 07:00:00 rocky kernel: booted\n", "var_log_t"),
    labelledLog("/var/log/secure", "sshd: Accepted publickey for rocky\n", "var_log_t"),
    labelledLog("/var/log/audit/audit.log", "type=USER_LOGIN msg=audit(1700000000.0:1): uid=1000\n", "auditd_log_t"),
    { op: "file", path: "/var/log/dnf.log", content: "dnf update\n", mode: 0o644 },
    ...loginRecordPlants(22, { wtmp: "wtmp-rocky", btmp: "btmp-rocky", lastlog: "lastlog-rocky" }),
    { op: "file", path: "/etc/machine-id", content: "aa11bb22cc33dd44ee55ff6677889900\n", mode: 0o444 },
    {
      op: "file",
      path: "/etc/udev/rules.d/70-persistent-net.rules",
      content: 'SUBSYSTEM=="net", ATTR{address}=="52:54:00:ab:cd:ef", NAME="eth0"\n',
    },
    { op: "file", path: "/etc/cloud/cloud.cfg", content: "users:\n - default\ndisable_root: 1\nssh_deletekeys: 1\n" },
    { op: "file", path: "/var/lib/cloud/instances/i-rocky/user-data.txt", content: "#cloud-config\n", mode: 0o600 },
    { op: "symlink", path: "/var/lib/cloud/instance", target: "/var/lib/cloud/instances/i-rocky" },
    { op: "file", path: "/var/lib/cloud/data/instance-id", content: "i-rocky\n" },
    { op: "file", path: "/tmp/ks-script-abc", content: "kickstart\n" },
    { op: "file", path: "/root/anaconda-ks.cfg", content: "# kickstart\nrootpw --iscrypted $6$x\n", mode: 0o600 },
    { op: "file", path: "/srv/data/keep.txt", content: "kept\n" },
  ];
}

function rhelExpectations(): Expectation[] {
  const e = expect;
  const ifcfgCleaned = IFCFG.filter((l) => !l.startsWith("HWADDR=") && !l.startsWith("DHCP_HOSTNAME=")).join("\n");
  return [
    e("/etc/sysconfig/network-scripts/ifcfg-eth0", "HWADDR and DHCP_HOSTNAME lines", { content: ifcfgCleaned }),
    e("/var/lib/rpm/__db.001", "host-specific rpm db files", "removed"),
    e("/var/lib/rpm/__db.002", "host-specific rpm db files", "removed"),
    e("/var/lib/rpm/rpmdb.sqlite", "the rpm database itself", "kept"),
    e("/var/cache/dnf/baseos-abc/repodata/repomd.xml", "dnf cache", "removed"),
    e("/var/cache/yum/x86_64/9/base/packages/bash.rpm", "yum cache", "removed"),
    e("/var/lib/yum/uuid", "yum uuid", "removed"),
    ...sshHostKeyExpectations("sshd-keygen"),
    e("/usr/lib/systemd/system/sshd-keygen@.service", "the unit that regenerates host keys", "kept"),
    e("/var/log/messages", "log with an SELinux label", "emptied"),
    e("/var/log/secure", "log with an SELinux label", "emptied"),
    e("/var/log/audit/audit.log", "audit log with an SELinux label", "emptied"),
    e("/var/log/dnf.log", "log", "emptied"),
    ...LOGIN_RECORD_EXPECTATIONS,
    e("/etc/machine-id", "machine id", "emptied"),
    e("/etc/udev/rules.d/70-persistent-net.rules", "udev persistent net", "gone"),
    ...CLOUD_INIT_STATE_EXPECTATIONS,
    e("/home/rocky/.bash_history", "bash history", "removed"),
    e("/root/.bash_history", "bash history", "removed"),
    e("/home/rocky/.ssh", "ssh user dir", "removed"),
    e("/home/rocky", "home directory", "any", "removed"),
    e("/etc/passwd", "accounts", "kept", {
      content:
        "root:x:0:0:root:/root:/bin/bash\nsshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\n",
    }),
    e("/etc/group", "accounts", "kept", {
      without: ["rocky:x:1000:", "wheel:x:10:rocky"],
      with: ["root:x:0:", "sshd:x:74:"],
    }),
    e("/etc/ssh/sshd_config", "Atmosphere block", "any", {
      content: "Include /etc/ssh/sshd_config.d/*.conf\nSubsystem sftp /usr/libexec/openssh/sftp-server\n",
    }),
    e("/tmp/ks-script-abc", "tmp files", "removed"),
    e("/etc/selinux/config", "SELinux stays as configured", "kept"),
    e("/srv/data/keep.txt", "site data", "kept"),
  ];
}

/** The Rocky Linux 9 guest (constructed tree, 64 MiB ext4 root on GPT), cached. */
export async function rhelGuest(): Promise<BuiltGuest> {
  const started = Date.now();
  const plants = rhelPlants();
  const key = hashOf({ plants, version: HELPER_VERSION });
  const name = `rocky9-${key}`;
  return cachedGuest(name, started, async (tree) => {
    await mkdir(tree, { recursive: true });
    await chmod(tree, 0o755);
    await plant(tree, plants);
    return { expectations: rhelExpectations(), planted: plants.map((p) => p.path), sizeMiB: 64 };
  });
}
