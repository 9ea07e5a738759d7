/**
 * A manifest of a mounted guest tree — every path with its type, mode, owner, size, content hash, link target
 * and extended attributes — read without ever following a symlink, and the difference of two manifests. The
 * cleaning proofs compare the tree before and after a run: what changed must be exactly what the run reported.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { lstat, open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { runOk } from "./tools.js";

export type EntryType = "file" | "dir" | "symlink" | "fifo" | "socket" | "char" | "block";

export interface ManifestEntry {
  readonly type: EntryType;
  /** Permission bits and set-id/sticky bits (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Regular files only (a directory's size depends on its history, not on what it holds). */
  readonly size: number;
  /** Regular files only: sha256 of the content. */
  readonly sha256?: string;
  readonly linkTarget?: string;
  /** name → hex value, as getfattr reports them (user, trusted, security namespaces). */
  readonly xattrs: Readonly<Record<string, string>>;
}

/** Guest path ("/etc/passwd", "/" for the root) → entry. */
export type Manifest = ReadonlyMap<string, ManifestEntry>;

function typeOf(st: import("node:fs").Stats): EntryType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "char";
  return "block";
}

/** Hashes a regular file opened with O_NOFOLLOW (the lstat said it is not a link; this makes sure). */
async function hashFile(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hash = createHash("sha256");
    const buffer = Buffer.allocUnsafe(1 << 20);
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    return hash.digest("hex");
  } finally {
    await handle.close();
  }
}

/**
 * Hashing a huge sparse file would read gigabytes of zeros: above this apparent size, only the allocated size
 * and the first and last MiB go into the "hash". Enough to see a truncation or an edit of such a file.
 */
const FULL_HASH_LIMIT = 256 * 2 ** 20;

async function fingerprintLarge(path: string, size: number, blocks: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hash = createHash("sha256");
    hash.update(`sparse:${size}:${blocks}:`);
    const buffer = Buffer.alloc(1 << 20);
    for (const at of [0, size - buffer.length]) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
      hash.update(buffer.subarray(0, bytesRead));
    }
    return hash.digest("hex");
  } finally {
    await handle.close();
  }
}

/** Decodes getfattr's escaping of file names (octal \ooo for control characters and backslash). */
function unescapeGetfattr(name: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(name, "utf8");
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString())) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString(), 8));
      i += 3;
    } else bytes.push(raw[i]!);
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * Every extended attribute under `root`, in one getfattr run: -P walks without following symlinks, -h reads a
 * link's own attributes. Keys are host paths.
 */
async function readXattrs(root: string): Promise<Map<string, Record<string, string>>> {
  const out = await runOk("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root]);
  const result = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of out.split("\n")) {
    if (line.startsWith("# file: ")) {
      current = {};
      result.set(unescapeGetfattr(line.slice("# file: ".length)), current);
    } else if (current && line.includes("=")) {
      const eq = line.indexOf("=");
      current[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return result;
}

/**
 * Walks the tree under `root` (a mounted guest; mount points below it are walked as part of the tree) and
 * returns its manifest keyed by guest path. `exclude` lists guest paths not to descend into (e.g. /proc).
 */
export async function takeManifest(root: string, exclude: readonly string[] = []): Promise<Manifest> {
  const xattrs = await readXattrs(root);
  const manifest = new Map<string, ManifestEntry>();
  const walk = async (guestPath: string, hostPath: string): Promise<void> => {
    const st = await lstat(hostPath);
    const type = typeOf(st);
    const entry: ManifestEntry = {
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: type === "file" ? st.size : 0,
      ...(type === "file"
        ? {
            sha256:
              st.size > FULL_HASH_LIMIT
                ? await fingerprintLarge(hostPath, st.size, st.blocks)
                : await hashFile(hostPath),
          }
        : {}),
      ...(type === "symlink" ? { linkTarget: await readlink(hostPath) } : {}),
      xattrs: xattrs.get(hostPath) ?? {},
    };
    manifest.set(guestPath, entry);
    if (type !== "dir" || exclude.includes(guestPath)) return;
    const names = (await readdir(hostPath)).sort();
    for (const name of names) await walk(guestPath === "/" ? `/${name}` : `${guestPath}/${name}`, join(hostPath, name));
  };
  await walk("/", root);
  return manifest;
}

export interface ManifestChange {
  readonly path: string;
  /** The fields that differ, e.g. ["size", "sha256"]. */
  readonly fields: readonly string[];
  readonly before: ManifestEntry;
  readonly after: ManifestEntry;
}

export interface ManifestDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly ManifestChange[];
}

const FIELDS = ["type", "mode", "uid", "gid", "size", "sha256", "linkTarget", "xattrs"] as const;

export function diffManifests(before: Manifest, after: Manifest): ManifestDiff {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: ManifestChange[] = [];
  for (const [path, a] of before) {
    const b = after.get(path);
    if (!b) {
      removed.push(path);
      continue;
    }
    const fields = FIELDS.filter((f) => JSON.stringify(a[f]) !== JSON.stringify(b[f]));
    if (fields.length) changed.push({ path, fields, before: a, after: b });
  }
  for (const path of after.keys()) if (!before.has(path)) added.push(path);
  return { added: added.sort(), removed: removed.sort(), changed };
}

/** Every path the diff touches (added, removed or changed), sorted. */
export function touchedPaths(diff: ManifestDiff): string[] {
  return [...diff.added, ...diff.removed, ...diff.changed.map((c) => c.path)].sort();
}

/** The diff's removed paths with the descendants of removed directories folded into them. */
export function removedRoots(diff: ManifestDiff): string[] {
  const roots: string[] = [];
  for (const path of [...diff.removed].sort()) {
    if (!roots.some((r) => path.startsWith(`${r}/`))) roots.push(path);
  }
  return roots;
}

/** A short human description of a diff, for assertion messages. */
export function describeDiff(diff: ManifestDiff, limit = 60): string {
  const lines = [
    ...diff.added.map((p) => `+ ${JSON.stringify(p)}`),
    ...removedRoots(diff).map((p) => `- ${JSON.stringify(p)}`),
    ...diff.changed.map((c) => `~ ${JSON.stringify(c.path)} (${c.fields.join(",")})`),
  ];
  return lines.length > limit
    ? [...lines.slice(0, limit), `… ${lines.length - limit} more`].join("\n")
    : lines.join("\n");
}
