/**
 * QEMU's sample images (tests/qemu-iotests/sample_images in qemu's source): disks made by the native tools of
 * formats qemu only reads (Hyper-V, Virtual PC, Disk2vhd, VMware, …) plus fuzzed ones. They come from Debian's
 * qemu source package, fetched with apt-get through a private configuration (its own sources list, lists and
 * cache folders) whose sources are this system's own `deb` lines turned into `deb-src`, so nothing here names
 * an archive host and the system's apt state is left untouched. The images are unpacked once into a cache
 * folder shared by every test process and reused by later runs.
 *
 *   const dir = await qemuSampleImages();          // the folder, fetched on first use
 *   const path = await qemuSampleImage("afl5.img"); // one image (its .bz2 already unpacked)
 */
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** Where test downloads are cached across runs (override with CHROMOGENIC_TEST_CACHE). */
export const TEST_CACHE_DIR = process.env.CHROMOGENIC_TEST_CACHE ?? "/var/tmp/chromogenic-test-cache";
const SAMPLES_DIR = join(TEST_CACHE_DIR, "qemu-sample-images");
const COMPLETE_MARKER = ".complete";
/** A lock older than this is from a crashed run and is taken over. */
const STALE_LOCK_MS = 20 * 60 * 1000;

let pending: Promise<string> | undefined;

/** The folder holding QEMU's unpacked sample images, fetching them on first use. */
export function qemuSampleImages(): Promise<string> {
  pending ??= ensureSamples().catch((e: unknown) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

/** The path of one sample image, by its unpacked name (e.g. "hyperv2012r2-dynamic.vhd"). */
export async function qemuSampleImage(name: string): Promise<string> {
  const dir = await qemuSampleImages();
  const path = join(dir, name);
  await stat(path).catch(() => {
    throw new Error(`qemu sample image ${name} is not in ${dir} (this qemu source version lacks it?)`);
  });
  return path;
}

async function isComplete(): Promise<boolean> {
  return stat(join(SAMPLES_DIR, COMPLETE_MARKER)).then(
    () => true,
    () => false,
  );
}

async function ensureSamples(): Promise<string> {
  if (await isComplete()) return SAMPLES_DIR;
  await mkdir(TEST_CACHE_DIR, { recursive: true });
  const lock = `${SAMPLES_DIR}.lock`;
  // One process fetches; the others (test files run in parallel) wait for its marker.
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_LOCK_MS) await rm(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 500));
      if (await isComplete()) return SAMPLES_DIR;
    }
  }
  try {
    if (await isComplete()) return SAMPLES_DIR;
    await fetchSamples();
    return SAMPLES_DIR;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function fetchSamples(): Promise<void> {
  const work = join(TEST_CACHE_DIR, `qemu-source.${process.pid}.tmp`);
  await rm(work, { recursive: true, force: true });
  try {
    const apt = await privateAptConfig(work);
    const download = join(work, "download");
    await mkdir(download, { recursive: true });
    // A repository without source indexes makes `update` complain; what matters is whether `source` then works.
    const update = await run("apt-get", [...apt, "-q", "update"], work);
    const source = await run("apt-get", [...apt, "-q", "source", "--download-only", "qemu"], download);
    if (source.code !== 0) {
      throw new Error(
        `could not download qemu's Debian source package for its sample images:\n${source.output}\n` +
          `(apt-get update said:\n${update.output})`,
      );
    }
    const tarball = (await readdir(download)).find((f) => /^qemu_.*\.orig\.tar\.(xz|gz|bz2)$/.test(f));
    if (!tarball) throw new Error(`apt-get source qemu brought no qemu_*.orig.tar.* into ${download}`);
    const unpacked = join(work, "samples");
    await mkdir(unpacked, { recursive: true });
    // Only the sample images: the top folder (qemu-X.Y.Z) and tests/qemu-iotests/sample_images are stripped.
    await runOk(
      "tar",
      [
        "-xf",
        join(download, tarball),
        "-C",
        unpacked,
        "--no-same-owner",
        "--wildcards",
        "--strip-components=4",
        "*/tests/qemu-iotests/sample_images/*",
      ],
      work,
    );
    const compressed = (await readdir(unpacked)).filter((f) => f.endsWith(".bz2"));
    if (compressed.length === 0) throw new Error(`${tarball} holds no tests/qemu-iotests/sample_images/*.bz2`);
    await runOk("bunzip2", ["-f", ...compressed.map((f) => join(unpacked, f))], work);
    // Several samples are mostly zeros; punching holes keeps the cache small (best effort: not every FS can).
    for (const f of compressed) await run("fallocate", ["--dig-holes", join(unpacked, f.slice(0, -4))], work);
    await writeFile(join(unpacked, COMPLETE_MARKER), `${tarball}\n${compressed.join("\n")}\n`);
    await rm(SAMPLES_DIR, { recursive: true, force: true });
    await rename(unpacked, SAMPLES_DIR);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** apt-get options for a private configuration under `work` whose sources are the system's, as deb-src. */
async function privateAptConfig(work: string): Promise<string[]> {
  const sourcesList = join(work, "sources.list");
  const emptyParts = join(work, "sources.list.d");
  const lists = join(work, "lists");
  const cache = join(work, "cache");
  for (const dir of [emptyParts, join(lists, "partial"), join(cache, "archives", "partial")]) {
    await mkdir(dir, { recursive: true });
  }
  const lines = await systemSourceLines();
  if (lines.length === 0) throw new Error("no enabled `deb` sources in /etc/apt to derive deb-src lines from");
  await writeFile(sourcesList, lines.join("\n") + "\n");
  return [
    "-o",
    `Dir::Etc::sourcelist=${sourcesList}`,
    "-o",
    `Dir::Etc::sourceparts=${emptyParts}`,
    "-o",
    `Dir::State::Lists=${lists}`,
    "-o",
    `Dir::Cache=${cache}`,
    "-o",
    "Dir::Cache::pkgcache=",
    "-o",
    "Dir::Cache::srcpkgcache=",
    // The private folders belong to whoever runs the tests; apt's unprivileged sandbox user could not write them.
    "-o",
    "APT::Sandbox::User=root",
  ];
}

/** The system's `deb` sources (one-line and deb822 formats) rewritten as `deb-src` one-line entries. */
async function systemSourceLines(): Promise<string[]> {
  const files: string[] = ["/etc/apt/sources.list"];
  const partsDir = "/etc/apt/sources.list.d";
  for (const f of await readdir(partsDir).catch(() => [] as string[])) {
    if (f.endsWith(".list") || f.endsWith(".sources")) files.push(join(partsDir, f));
  }
  const lines = new Set<string>();
  for (const file of files) {
    const text = await readFile(file, "utf8").catch(() => "");
    const converted = file.endsWith(".sources") ? fromDeb822(text) : fromOneLine(text);
    for (const line of converted) lines.add(line);
  }
  return [...lines];
}

function fromOneLine(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => /^deb\s/.test(l))
    .map((l) => l.replace(/^deb\s+/, "deb-src "));
}

function fromDeb822(text: string): string[] {
  const out: string[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = "";
    for (const raw of stanza.split("\n")) {
      if (raw.startsWith("#")) continue;
      if (/^\s/.test(raw) && last) {
        fields.set(last, `${fields.get(last)}\n${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (m) {
        last = m[1]!.toLowerCase();
        fields.set(last, m[2]!.trim());
      }
    }
    const types = (fields.get("types") ?? "").split(/\s+/);
    if (!types.includes("deb") || /^(no|false)$/i.test(fields.get("enabled") ?? "")) continue;
    const signedBy = fields.get("signed-by") ?? "";
    // Only a keyring path can go into a one-line entry; an inline key falls back to apt's trusted keys.
    const options = signedBy.startsWith("/") && !signedBy.includes("\n") ? ` [signed-by=${signedBy}]` : "";
    const components = (fields.get("components") ?? "").split(/\s+/).filter(Boolean).join(" ");
    for (const uri of (fields.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
      for (const suite of (fields.get("suites") ?? "").split(/\s+/).filter(Boolean)) {
        // A suite ending in "/" is a flat repository, which takes no components.
        out.push(`deb-src${options} ${uri} ${suite}${suite.endsWith("/") ? "" : ` ${components}`}`);
      }
    }
  }
  return out;
}

async function run(cmd: string, args: readonly string[], cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { cwd, maxBuffer: 64 * 2 ** 20 });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== "number") throw e;
    return { code: err.code, output: (err.stdout ?? "") + (err.stderr ?? "") };
  }
}

async function runOk(cmd: string, args: readonly string[], cwd: string): Promise<void> {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.output}`);
}
