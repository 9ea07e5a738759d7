import { constants, type Stats } from "node:fs";
import { lstat, mkdir, open, readdir, readlink, rmdir, symlink, unlink, type FileHandle } from "node:fs/promises";
import { dirname, posix, relative, sep } from "node:path";
import { GuestPathError, resolveGuestPath } from "../../guest/guest-path.js";
import type { CleaningAction } from "./cleaning-report.js";

/** Files edited as text are read whole; anything larger is not a configuration file we should be editing. */
export const MAX_EDIT_BYTES = 16 * 2 ** 20;

/** Opening never follows a final symlink, never blocks on a FIFO, never makes a tty ours. */
const OPEN_GUARD = constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

export interface TreeChange {
  readonly action: CleaningAction;
  readonly path: string;
  readonly detail?: string;
  readonly bytes?: number;
}

/** The result of a text edit: the new text and what was done, or null for "nothing to change". */
export interface TextEdit {
  readonly text: string;
  readonly detail: string;
}

export type EntryKind = "file" | "directory" | "symlink" | "fifo" | "socket" | "device";

export function kindOf(st: Stats): EntryKind {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  return "device";
}

function allocated(st: Stats): number {
  return st.blocks * 512;
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * The one set of guest-file primitives every cleaning operation goes through: remove, empty a folder, truncate
 * in place, edit text in place, create a file or symlink, plus the reads they plan from.
 *
 * Safety, in one place:
 * - every guest path is mapped by `resolveGuestPath`, so guest symlinks (absolute, relative, `..` chains) are
 *   followed as the guest would, never out of the guest root; the last component is never followed when
 *   changing it (a symlink is removed as a link, and truncating or editing one is refused);
 * - trees are walked with `lstat` only, never through a symlink; a walk's root that is itself a symlink is
 *   not followed (a hostile `/var/log -> /etc` would otherwise empty the guest's /etc);
 * - files are opened with O_NOFOLLOW|O_NONBLOCK and checked with fstat (a regular file, the same inode we
 *   planned on) before anything is read or written: FIFOs, sockets, devices and folders are skipped with a
 *   warning, never opened for writing; hard-linked files (another path's data) are left alone too;
 * - truncation and edits keep the inode, so owner, mode, xattrs and SELinux labels stay as they were.
 *
 * Dry run: the same code runs, files are opened read-only and nothing is written; an overlay remembers what
 * the run would have removed, emptied, edited or created, so later operations plan against the tree as the
 * real run would leave it and the dry run's report equals the real run's.
 */
export class GuestTree {
  private readonly removed = new Set<string>();
  private readonly emptied = new Set<string>();
  private readonly contents = new Map<string, Buffer>();
  private readonly created = new Set<string>();

  constructor(
    /** Host folder holding the guest's `/`. */
    readonly root: string,
    readonly dryRun: boolean,
    private readonly record: (change: TreeChange) => void,
    private readonly warn: (message: string) => void,
  ) {}

  /** The host path of a guest path; `followLast` for reading through a final symlink (inside the guest). */
  async host(guestPath: string, followLast = false): Promise<string> {
    return resolveGuestPath(this.root, guestPath, { followLast });
  }

  /**
   * `host`, but a guest path that cannot be resolved (a symlink loop, a file where a folder should be) is a
   * warning and null: one hostile path does not stop the whole cleaning.
   */
  private async resolve(guestPath: string, followLast = false): Promise<string | null> {
    try {
      return await this.host(guestPath, followLast);
    } catch (e) {
      if (!(e instanceof GuestPathError)) throw e;
      this.warn(`${e.message}; left alone`);
      return null;
    }
  }

  /** The guest path of a host path under the root. */
  guestPath(host: string): string {
    const rel = relative(this.root, host);
    return "/" + rel.split(sep).join("/");
  }

  private isRemoved(host: string): boolean {
    for (let p = host; p.length >= this.root.length; p = dirname(p)) {
      if (this.removed.has(p)) return true;
      if (p === dirname(p)) break;
    }
    return false;
  }

  /** lstat as the run sees the tree: null when missing or (in a dry run) already removed. */
  private async stat(host: string): Promise<Stats | null> {
    if (this.isRemoved(host)) return null;
    try {
      return await lstat(host);
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  /** What is at a guest path (the last component not followed), or null. */
  async kind(guestPath: string): Promise<EntryKind | null> {
    const host = await this.resolve(guestPath);
    if (host === null) return null;
    if (this.dryRun && this.created.has(host)) return "file";
    const st = await this.stat(host);
    return st && kindOf(st);
  }

  /** Names in a guest folder (guest symlinks followed inside the guest), sorted; [] when not a folder. */
  async list(guestDir: string): Promise<string[]> {
    const host = await this.resolve(guestDir, true);
    if (host === null) return [];
    if (this.isRemoved(host)) return [];
    let names: string[];
    try {
      names = await readdir(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (isMissing(e) || code === "ENOTDIR") return [];
      throw e;
    }
    const out = [];
    for (const name of names.sort()) if (!this.isRemoved(`${host}/${name}`)) out.push(name);
    return out;
  }

  /** The target of a guest symlink, or null when it is not one. */
  async linkTarget(guestPath: string): Promise<string | null> {
    const host = await this.resolve(guestPath);
    if (host === null) return null;
    const st = await this.stat(host);
    if (!st?.isSymbolicLink()) return null;
    return readlink(host);
  }

  /**
   * Opens a planned regular file with the guard flags and checks it is still that file. Returns null (after a
   * warning) for anything else.
   */
  private async openChecked(host: string, planned: Stats, flags: number): Promise<FileHandle | null> {
    let fh: FileHandle;
    try {
      fh = await open(host, flags | OPEN_GUARD);
    } catch (e) {
      this.warn(`${this.guestPath(host)}: cannot open (${(e as NodeJS.ErrnoException).code}); left alone`);
      return null;
    }
    const st = await fh.stat();
    if (!st.isFile() || st.ino !== planned.ino || st.dev !== planned.dev) {
      await fh.close();
      this.warn(`${this.guestPath(host)}: changed under us (not the regular file planned); left alone`);
      return null;
    }
    return fh;
  }

  /** A regular file we may change in place, or null (with a warning when something is there but unfit). */
  private async regularFile(host: string, what: string): Promise<Stats | null> {
    const st = await this.stat(host);
    if (!st) return null;
    if (!st.isFile()) {
      this.warn(`${this.guestPath(host)}: is a ${kindOf(st)}, not a regular file; not ${what}`);
      return null;
    }
    if (st.nlink > 1) {
      this.warn(`${this.guestPath(host)}: has ${st.nlink} hard links (another path's data too); not ${what}`);
      return null;
    }
    return st;
  }

  /** Reads a guest text file (following guest symlinks inside the guest), or null when not a small regular file. */
  async readText(guestPath: string): Promise<string | null> {
    const host = await this.resolve(guestPath, true);
    if (host === null) return null;
    const pending = this.contents.get(host);
    if (pending) return pending.toString("latin1");
    const st = await this.stat(host);
    if (!st?.isFile() || st.size > MAX_EDIT_BYTES) return null;
    if (this.dryRun && this.emptied.has(host)) return "";
    const fh = await this.openChecked(host, st, constants.O_RDONLY);
    if (!fh) return null;
    try {
      return (await readAll(fh)).toString("latin1");
    } finally {
      await fh.close();
    }
  }

  /** Removes a file, a symlink (as a link) or a whole tree (walked without following symlinks). */
  async remove(guestPath: string, detail?: string): Promise<void> {
    const host = await this.resolve(guestPath);
    if (host === null) return;
    if (host === this.root) {
      this.warn(`${guestPath}: resolves to the guest's root; not removed`);
      return;
    }
    const st = await this.stat(host);
    if (!st) return;
    let bytes = 0;
    let entries = 0;
    if (st.isDirectory()) {
      const size = await treeSize(host, this.emptied);
      bytes = size.bytes;
      entries = size.entries;
      if (!this.dryRun) await removeTree(host, this.warn, this.guestPath.bind(this));
    } else {
      if (st.isFile() && st.nlink === 1 && !this.emptied.has(host)) bytes = allocated(st);
      if (!this.dryRun) await unlink(host);
    }
    if (this.dryRun) this.removed.add(host);
    this.record({
      action: "remove",
      path: this.guestPath(host),
      detail: detail ?? (st.isDirectory() ? `folder with ${entries} entries` : kindOf(st)),
      bytes,
    });
  }

  /** Removes everything inside a folder, keeping the folder itself (its mode, owner and labels). */
  async emptyFolder(guestPath: string): Promise<void> {
    const host = await this.resolve(guestPath);
    if (host === null) return;
    const st = await this.stat(host);
    if (!st) return;
    if (!st.isDirectory()) {
      this.warn(`${this.guestPath(host)}: is a ${kindOf(st)}, not a folder; not emptied`);
      return;
    }
    for (const name of await this.list(this.guestPath(host))) await this.remove(`${this.guestPath(host)}/${name}`);
  }

  /**
   * Empties a regular file in place (open O_WRONLY|O_NOFOLLOW|O_NONBLOCK, fstat, ftruncate): same inode, so
   * mode, owner, xattrs and SELinux label are kept; a huge sparse file is never read.
   */
  async truncate(guestPath: string): Promise<void> {
    const host = await this.resolve(guestPath);
    if (host === null) return;
    const st = await this.regularFile(host, "emptied");
    if (!st || st.size === 0 || this.emptied.has(host)) return;
    const fh = await this.openChecked(host, st, this.dryRun ? constants.O_RDONLY : constants.O_WRONLY);
    if (!fh) return;
    try {
      if (!this.dryRun) await fh.truncate(0);
    } finally {
      await fh.close();
    }
    if (this.dryRun) this.emptied.add(host);
    this.record({
      action: "truncate",
      path: this.guestPath(host),
      detail: `emptied ${st.size} bytes`,
      bytes: allocated(st),
    });
  }

  /**
   * Edits a text file in place: read, `edit`, write back over the same inode and ftruncate to the new length.
   * Bytes are kept exactly (latin1 round trip); an edit that changes nothing records nothing, so a second run
   * reports no change.
   */
  async editText(guestPath: string, edit: (text: string) => TextEdit | null): Promise<void> {
    const host = await this.resolve(guestPath);
    if (host === null) return;
    const st = await this.regularFile(host, "edited");
    if (!st) return;
    if (st.size > MAX_EDIT_BYTES) {
      this.warn(`${this.guestPath(host)}: ${st.size} bytes, too large to edit as text; left alone`);
      return;
    }
    const fh = await this.openChecked(host, st, this.dryRun ? constants.O_RDONLY : constants.O_RDWR);
    if (!fh) return;
    try {
      const before = this.contents.get(host) ?? (this.emptied.has(host) ? Buffer.alloc(0) : await readAll(fh));
      const text = before.toString("latin1");
      const result = edit(text);
      if (!result || result.text === text) return;
      const after = Buffer.from(result.text, "latin1");
      if (this.dryRun) this.contents.set(host, after);
      else {
        await fh.write(after, 0, after.length, 0);
        await fh.truncate(after.length);
      }
      this.record({
        action: "edit",
        path: this.guestPath(host),
        detail: result.detail,
        bytes: Math.max(0, before.length - after.length),
      });
    } finally {
      await fh.close();
    }
  }

  /** Creates a regular file (O_CREAT|O_EXCL|O_NOFOLLOW); an identical existing file is no change. */
  async createFile(guestPath: string, content: string, mode: number, detail: string): Promise<void> {
    const host = await this.resolve(guestPath);
    if (host === null) return;
    if (this.dryRun && this.created.has(host)) return;
    const st = await this.stat(host);
    if (st) {
      if (st.isFile() && (await this.readText(guestPath)) === content) return;
      this.warn(`${this.guestPath(host)}: already exists with other content; left alone`);
      return;
    }
    if (this.dryRun) this.created.add(host);
    else {
      await mkdir(dirname(host), { recursive: true, mode: 0o755 });
      const fh = await open(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | OPEN_GUARD, mode);
      try {
        await fh.writeFile(content);
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
    }
    this.record({ action: "create", path: this.guestPath(host), detail, bytes: 0 });
  }

  /** Creates a guest symlink; one already pointing at `target` is no change. */
  async createSymlink(guestPath: string, target: string, detail: string): Promise<void> {
    const host = await this.resolve(guestPath);
    if (host === null) return;
    if (this.dryRun && this.created.has(host)) return;
    const st = await this.stat(host);
    if (st) {
      if (st.isSymbolicLink() && (await readlink(host)) === target) return;
      this.warn(`${this.guestPath(host)}: already exists; left alone`);
      return;
    }
    if (this.dryRun) this.created.add(host);
    else {
      await mkdir(dirname(host), { recursive: true, mode: 0o755 });
      await symlink(target, host);
    }
    this.record({ action: "create", path: this.guestPath(host), detail, bytes: 0 });
  }

  /**
   * Every entry under a guest folder, depth first, sorted, never through a symlink; `visit` gets the guest
   * path and lstat of each non-folder entry. A root that is a symlink is not followed (warned).
   */
  async walk(guestDir: string, visit: (guestPath: string, st: Stats) => Promise<void>): Promise<void> {
    const host = await this.resolve(guestDir);
    if (host === null) return;
    const st = await this.stat(host);
    if (!st) return;
    if (st.isSymbolicLink()) {
      this.warn(`${guestDir}: is a symlink to ${await readlink(host)}; not followed`);
      return;
    }
    if (!st.isDirectory()) return;
    const recurse = async (dir: string): Promise<void> => {
      for (const name of await this.list(this.guestPath(dir))) {
        const child = `${dir}/${name}`;
        const cst = await this.stat(child);
        if (!cst) continue;
        if (cst.isDirectory()) await recurse(child);
        else await visit(this.guestPath(child), cst);
      }
    };
    await recurse(host);
  }
}

async function readAll(fh: FileHandle): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let position = 0;
  for (;;) {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, position);
    if (bytesRead === 0) break;
    chunks.push(buf.subarray(0, bytesRead));
    position += bytesRead;
    if (position > MAX_EDIT_BYTES) throw new Error(`file grew beyond ${MAX_EDIT_BYTES} bytes while read`);
  }
  return Buffer.concat(chunks);
}

/** Allocated bytes of the regular files in a tree and its entry count (lstat only). */
async function treeSize(host: string, emptied: ReadonlySet<string>): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  for (const entry of await readdir(host, { withFileTypes: true })) {
    entries++;
    const child = posix.join(host, entry.name);
    if (entry.isDirectory()) {
      const sub = await treeSize(child, emptied);
      bytes += sub.bytes;
      entries += sub.entries;
    } else if (entry.isFile()) {
      const st = await lstat(child);
      // A file this dry run already emptied holds nothing by the time the real run removes it.
      if (st.nlink === 1 && !emptied.has(child)) bytes += allocated(st);
    }
  }
  return { bytes, entries };
}

/** rm -r without following symlinks; a folder another filesystem is mounted on is emptied and kept (warned). */
async function removeTree(host: string, warn: (m: string) => void, guestPath: (h: string) => string): Promise<void> {
  for (const entry of await readdir(host, { withFileTypes: true })) {
    const child = posix.join(host, entry.name);
    if (entry.isDirectory()) await removeTree(child, warn, guestPath);
    else await unlink(child);
  }
  try {
    await rmdir(host);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EBUSY") throw e;
    warn(`${guestPath(host)}: a filesystem is mounted there; emptied but kept`);
  }
}
