/**
 * What the cleaning proofs share: a scratch folder whose guest journals are undone before it is removed, the
 * `chromogenic clean` CLI run as a child process, snapshots (manifest + selected file contents) of an image
 * opened read-only through the project's own guest layer, `e2fsck -fn` of an output's root filesystem, the
 * check of each planted path's outcome, and the comparison of a run's report with what really changed.
 */
import { constants } from "node:fs";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGuest } from "../../src/guest/guest-session.js";
// The report `chromogenic clean --report FILE` writes is the cleaning contract's own CleaningReport.
import type { CleaningChange, CleaningReport } from "../../src/operations/cleaning/cleaning-report.js";
import { PARTITION_OFFSET, type Expectation, type Outcome } from "./debian-guest.js";
import { run, runCli, runOk, type CliResult } from "./tools.js";
import { takeManifest, touchedPaths, type Manifest, type ManifestDiff, type ManifestEntry } from "./tree-manifest.js";

export { sha256File } from "./tools.js";

/**
 * Mounts and loop devices mentioning `dir` (there must be none once a run is over): mounts as the host sees them, or as process `pid` sees them (the
 * CLI mounts guests in a private mount namespace of its own; once it has exited, none can remain there).
 */
export async function leftovers(dir: string, pid?: number): Promise<string[]> {
  const task = pid === undefined ? [] : ["--task", String(pid)];
  const mounts = (
    await runOk("findmnt", [...task, "--raw", "--noheadings", "--output", "TARGET,SOURCE"]).catch(() => "")
  ).split("\n");
  const loops = (await runOk("losetup", ["--all"])).split("\n");
  return [...mounts, ...loops].filter((l) => l.includes(dir));
}

// The CLI runner lives with the other tool runners in tools.ts; the cleaning proofs take it from here too.
export { CLI, runCli, type CliResult } from "./tools.js";

export interface GuestScratch {
  readonly dir: string;
  /** The environment for CLI runs: the state dir (journals, mounts) lives inside `dir`. */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * A scratch folder with its own state dir; afterwards `guest cleanup --force` undoes whatever a failed run
 * left, and the folder is removed only when nothing is mounted in it (never rm -rf into a mounted guest).
 */
export async function guestScratch(t: { after(fn: () => Promise<void> | void): void }): Promise<GuestScratch> {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-clean-"));
  const env = { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, "state") };
  t.after(async () => {
    await runCli(["guest", "cleanup", "--force"], env, 120_000);
    if ((await leftovers(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  });
  return { dir, env };
}

/** `chromogenic clean … --report FILE`: the run's result and its parsed report (null when none was written). */
export async function runClean(
  scratch: GuestScratch,
  args: readonly string[],
  reportName: string,
): Promise<CliResult & { report: CleaningReport | null }> {
  const reportPath = join(scratch.dir, reportName);
  const r = await runCli(["clean", "--report", reportPath, ...args], scratch.env);
  const text = await readFile(reportPath, "utf8").catch(() => null);
  return { ...r, report: text ? (JSON.parse(text) as CleaningReport) : null };
}

export interface Snapshot {
  readonly manifest: Manifest;
  /** Contents of the requested paths that are regular files (absent otherwise). */
  readonly contents: ReadonlyMap<string, string>;
}

/**
 * Opens `image` read-only through the project's guest layer (in this process, with `stateDir` for its
 * journal) and records its manifest and the contents of `paths`.
 */
export async function snapshotImage(image: string, stateDir: string, paths: readonly string[] = []): Promise<Snapshot> {
  const previous = process.env.CHROMOGENIC_STATE_DIR;
  process.env.CHROMOGENIC_STATE_DIR = stateDir;
  try {
    const guest = await openGuest(image, { readOnly: true });
    try {
      const manifest = await takeManifest(guest.mounted.root, ["/proc", "/sys", "/dev"]);
      const contents = new Map<string, string>();
      for (const p of paths) {
        if (manifest.get(p)?.type !== "file") continue;
        const h = await open(join(guest.mounted.root, p), constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          contents.set(p, await h.readFile("utf8"));
        } finally {
          await h.close();
        }
      }
      return { manifest, contents };
    } finally {
      await guest.close();
    }
  } finally {
    if (previous === undefined) delete process.env.CHROMOGENIC_STATE_DIR;
    else process.env.CHROMOGENIC_STATE_DIR = previous;
  }
}

/**
 * `e2fsck -fn` on the root filesystem of a disk image in any format qemu-img reads: converted to a sparse raw
 * file, the partition attached read-only by offset. Returns e2fsck's exit code and output.
 */
export async function fsckRoot(image: string, scratchDir: string): Promise<{ code: number; output: string }> {
  const raw = join(scratchDir, `fsck-${Date.now()}.raw`);
  await runOk("qemu-img", ["convert", "-O", "raw", image, raw]);
  const loop = (
    await runOk("losetup", ["--find", "--show", "--read-only", "--offset", String(PARTITION_OFFSET), raw])
  ).trim();
  try {
    const r = await run("e2fsck", ["-fn", loop]);
    return { code: r.code, output: r.stdout + r.stderr };
  } finally {
    await runOk("losetup", ["--detach", loop]);
    await rm(raw, { force: true });
  }
}

function sameMeta(a: ManifestEntry, b: ManifestEntry): boolean {
  return (
    a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && JSON.stringify(a.xattrs) === JSON.stringify(b.xattrs)
  );
}

/** Checks one outcome; returns a description of what is wrong, or null. */
export function checkOutcome(path: string, outcome: Outcome, before: Snapshot, after: Snapshot): string | null {
  const a = before.manifest.get(path);
  const b = after.manifest.get(path);
  if (!a) return `${path}: was not in the image before the clean (planting went wrong)`;
  const show = (e: ManifestEntry | undefined) =>
    e ? `${e.type} size ${e.size} mode ${e.mode.toString(8)} ${e.uid}:${e.gid}` : "absent";
  if (outcome === "any") return null;
  if (outcome === "removed") return b ? `${path}: expected removed, is ${show(b)}` : null;
  if (outcome === "emptied") {
    if (!b) return `${path}: expected emptied in place, was removed`;
    if (b.type !== "file" || b.size !== 0) return `${path}: expected emptied, is ${show(b)}`;
    if (!sameMeta(a, b))
      return `${path}: emptied but mode/owner/xattrs changed: ${show(a)} ${JSON.stringify(a.xattrs)} -> ${show(b)} ${JSON.stringify(b.xattrs)}`;
    return null;
  }
  if (outcome === "gone")
    return !b || (b.type === "file" && b.size === 0) ? null : `${path}: expected removed or emptied, is ${show(b)}`;
  if (outcome === "kept")
    return JSON.stringify(a) === JSON.stringify(b) ? null : `${path}: expected unchanged, ${show(a)} -> ${show(b)}`;
  const text = after.contents.get(path);
  if (text === undefined) return `${path}: expected a regular file, is ${show(b)}`;
  if ("content" in outcome)
    return text === outcome.content
      ? null
      : `${path}: content differs from the expected\n--- expected\n${outcome.content}\n--- actual\n${text}`;
  const lines = new Set(text.split("\n"));
  const present = outcome.without.filter((l) => lines.has(l));
  const missing = (outcome.with ?? []).filter((l) => !lines.has(l));
  if (present.length || missing.length)
    return `${path}: lines that should be gone: ${JSON.stringify(present)}; lines that should remain but are missing: ${JSON.stringify(missing)}`;
  return null;
}

export function checkOutcomes(
  expectations: readonly Expectation[],
  profile: "default" | "atmosphere",
  before: Snapshot,
  after: Snapshot,
): string[] {
  return expectations
    .map((e) => checkOutcome(e.path, e[profile], before, after))
    .filter((x): x is string => x !== null);
}

/** Paths whose contents an outcome check needs. */
export function contentPaths(expectations: readonly Expectation[]): string[] {
  return expectations.filter((e) => [e.default, e.atmosphere].some((o) => typeof o === "object")).map((e) => e.path);
}

/**
 * The report against the manifests: every path that changed must be covered by a reported change (a removed
 * directory covers what was under it), and every reported change must show in the diff as the kind of change it
 * claims. Returns the discrepancies, one line each.
 */
export function reportVersusDiff(changes: readonly CleaningChange[], diff: ManifestDiff): string[] {
  const problems: string[] = [];
  const pathChanges = changes.filter((c) => c.action !== "zero-free-space");
  const covered = (path: string) =>
    pathChanges.some((c) => c.path === path || (c.action === "remove" && path.startsWith(`${c.path}/`)));
  for (const p of touchedPaths(diff))
    if (!covered(p)) problems.push(`changed but not reported: ${JSON.stringify(p)} ${describeKind(p, diff)}`);
  const added = new Set(diff.added);
  const removed = new Set(diff.removed);
  const changed = new Set(diff.changed.map((c) => c.path));
  for (const c of pathChanges) {
    const kind = added.has(c.path)
      ? "added"
      : removed.has(c.path)
        ? "removed"
        : changed.has(c.path)
          ? "changed"
          : "none";
    const fits =
      c.action === "remove"
        ? kind === "removed"
        : c.action === "create"
          ? kind === "added" || kind === "changed"
          : kind === "changed" || (c.action === "edit" && kind === "added");
    if (!fits)
      problems.push(
        `reported ${c.action} of ${JSON.stringify(c.path)} (${c.operation}), but in the image it was ${kind}`,
      );
  }
  return problems;
}

function describeKind(path: string, diff: ManifestDiff): string {
  if (diff.added.includes(path)) return "(added)";
  if (diff.removed.includes(path)) return "(removed)";
  const c = diff.changed.find((x) => x.path === path);
  return c ? `(changed: ${c.fields.join(",")})` : "";
}

/** A change list as comparable strings: operation, action and path. */
export function changeKeys(changes: readonly CleaningChange[]): string[] {
  return changes.map((c) => `${c.action} ${JSON.stringify(c.path)} [${c.operation}]`).sort();
}
