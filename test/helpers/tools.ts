/**
 * Test helpers shared by every suite: scratch folders, the reference tools (qemu-img, libyal readers)
 * and sample images with known content. Tests use real tools, never mocks of them.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** A file's SHA-256 (hex), read as a stream: images are large. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command and returns its exit code and output without throwing on a non-zero exit. */
export async function run(cmd: string, args: readonly string[]): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { maxBuffer: 64 * 2 ** 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== "number") throw e;
    return { code: err.code, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

/** Runs a command that must succeed; its stderr is in the error if it does not. */
export async function runOk(cmd: string, args: readonly string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export const qemuImg = (...args: string[]) => runOk("qemu-img", args);

/**
 * `qemu-img compare` exit code: 0 identical content, 1 different. `strict` (-s) also fails on differing
 * allocation status, which sparse outputs legitimately have; without it, a size difference must be zeros.
 */
export async function qemuCompare(a: string, b: string, opts: { strict?: boolean } = {}): Promise<RunResult> {
  return run("qemu-img", ["compare", ...(opts.strict ? ["-s"] : []), a, b]);
}

/** `qemu-img check --output=json` parsed; throws if qemu-img cannot run it at all. */
export async function qemuCheck(path: string): Promise<{ code: number; report: Record<string, unknown> }> {
  const r = await run("qemu-img", ["check", "--output=json", path]);
  return { code: r.code, report: r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown>) : {} };
}

export async function qemuInfo(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await qemuImg("info", "--output=json", path)) as Record<string, unknown>;
}

/** A scratch folder removed after the test. */
export async function scratch(t: { after(fn: () => Promise<void> | void): void }, prefix = "chromo-test-") {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A deterministic pseudo-random pattern (xorshift), so failures reproduce. */
export function pattern(length: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** A compressible but non-trivial pattern: text-like repeating content with varying bytes. */
export function textPattern(length: number, seed = 1): Buffer {
  const words = ["chromogenic ", "qcow2 ", "cluster ", "image ", "data ", `${seed} `, "\n"];
  const parts: string[] = [];
  let n = 0;
  let i = seed;
  while (n < length) {
    const w = words[(i * 7 + (i >> 3)) % words.length]!;
    parts.push(w);
    n += w.length;
    i++;
  }
  return Buffer.from(parts.join("")).subarray(0, length);
}

export interface Region {
  readonly offset: number;
  readonly data: Buffer;
}

/** Writes a sparse raw file of `size` bytes with `regions` filled in and holes elsewhere. */
export async function makeRaw(path: string, size: number, regions: readonly Region[] = []): Promise<void> {
  const h = await open(path, "w");
  try {
    await h.truncate(size);
    for (const r of regions) await h.write(r.data, 0, r.data.length, r.offset);
  } finally {
    await h.close();
  }
}

/** The standard mix of content every format is tested with: data, zero runs written as data, holes, odd tail. */
export function mixedRegions(size: number): Region[] {
  const MiB = 2 ** 20;
  const regions: Region[] = [
    { offset: 0, data: pattern(3 * 4096 + 123, 7) },
    { offset: 1 * MiB, data: textPattern(2 * MiB + 5, 3) },
    { offset: 4 * MiB, data: Buffer.alloc(256 * 1024) }, // explicit zeros written as data
    { offset: 5 * MiB - 512, data: pattern(1024, 9) }, // crosses a 1 MiB boundary
  ];
  if (size > 6 * MiB) regions.push({ offset: size - 777, data: pattern(777, 11) }); // the very end
  return regions.filter((r) => r.offset + r.data.length <= size);
}

/** A disk the writer suites convert: its name (shown in test titles), size and content. */
export interface Sample {
  readonly name: string;
  readonly size: number;
  readonly regions: Region[];
}

/**
 * The samples every writer suite starts from: the standard mix (data, explicit zeros, holes, a region crossing
 * a boundary, an odd tail) on a disk just over 64 MiB, and text-like data on a disk whose size is not a
 * multiple of 512 (the last unit is short and its tail padded).
 */
export function standardSamples(): { readonly sparseMixed: Sample; readonly oddSize: Sample } {
  const MiB = 2 ** 20;
  return {
    sparseMixed: { name: "sparse mixed", size: 64 * MiB + 4096 + 512, regions: mixedRegions(64 * MiB + 4096 + 512) },
    oddSize: {
      name: "patterned, size not a multiple of 512",
      size: 3 * MiB + 777,
      regions: [
        { offset: 1000, data: textPattern(MiB + 3000, 2) },
        { offset: 3 * MiB + 10, data: pattern(767, 4) },
      ],
    },
  };
}

/** The CLI entry point, relative to the repository root (where the test runner runs). */
export const CLI = "bin/chromogenic.js";

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}
