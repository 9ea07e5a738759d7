/**
 * What every benchmark shares: where it finds the repository, its cached inputs and the chromogenic it times
 * (the CLI under the Node.js the project provisioned, else the Node running the bench), and the machine line
 * its figures start with.
 */
import { existsSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root: the benchmarks run as dist/bench/*.js. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** bench/work/: inputs made by make-test-disks.sh, outputs, results (gitignored). */
export const WORK = join(ROOT, "bench", "work");
export const NODE_BIN = existsSync(join(ROOT, "node_modules", ".bin", "node"))
  ? join(ROOT, "node_modules", ".bin", "node")
  : process.execPath;
export const CLI = join(ROOT, "bin", "chromogenic.js");

/** The line every benchmark starts with: the machine and how busy it was, the figures' context. */
export function machineLine(repeat: number): string {
  const cpu = cpus();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const model = cpu[0]?.model.trim() ?? "unknown CPU";
  return `machine: ${cpu.length} × ${model}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM; load average at start: ${load}; repeat ${repeat}`;
}

/** The middle sample (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Ends a benchmark that cannot go on: one line on stderr naming it, exit status 1. */
export function benchFail(bench: string, message: string): never {
  process.stderr.write(`${bench}: ${message}\n`);
  process.exit(1);
}

/** `[--repeat N] [--keep]` (BENCH_REPEAT the default count), what the benchmarks without cases take. */
export function repeatKeepOptions(bench: string, argv: readonly string[]): { repeat: number; keep: boolean } {
  let repeat = Number(process.env["BENCH_REPEAT"] ?? 1);
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--repeat") repeat = Number(argv[++i]);
    else if (argv[i] === "--keep") keep = true;
    else
      benchFail(
        bench,
        `unknown option ${argv[i]}\nusage: node dist/bench/${bench}.js [--repeat N] [--keep]  (env BENCH_REPEAT)`,
      );
  }
  if (!Number.isInteger(repeat) || repeat < 1) benchFail(bench, "--repeat needs a positive integer");
  return { repeat, keep };
}
