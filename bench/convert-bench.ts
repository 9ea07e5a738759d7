/**
 * Conversion benchmark: chromogenic vs `qemu-img convert` on the same inputs, in the same run.
 *
 *   bash bench/make-test-disks.sh && npm run bench [-- --cases raw-qcow2-zlib --repeat 5]
 *
 * Every tool runs under `/usr/bin/time` (wall, user+sys CPU, peak RSS), `--repeat` times (default 3,
 * or $BENCH_REPEAT; at least 7 for the sub-second "not slower" cases), interleaved. The median of each
 * measurement is reported with the fastest run's wall time, which speed targets compare (see Row.bestWall for
 * why: this machine's noise only adds time). The input is read once through `cat > /dev/null` before each case so
 * every run sees a warm page cache, and `sync` runs before every timed run so one run's dirty pages are not
 * written back during the next. Our outputs are checked with `qemu-img compare` (and `qemu-img check` for
 * qcow2), untimed.
 *
 * Exit status: 0 when everything ran (a missed target is not a failure: this is a benchmark); 1 when
 * a tool crashed, an output did not match its input, or the setup is missing.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { basename, join } from "node:path";
import { CLI, median, NODE_BIN, ROOT, WORK } from "./bench-context.js";

// ---------------------------------------------------------------------------------------------
// paths and options

const OUT_DIR = join(WORK, "out");
const RESULTS_MD = join(WORK, "results.md");
const RESULTS_JSON = join(WORK, "results.json");
const TIME_BIN = "/usr/bin/time";
const MiB = 1024 * 1024;

interface Options {
  cases: string[] | undefined;
  repeat: number;
  keep: boolean;
  list: boolean;
}

function usage(): string {
  return [
    "usage: node dist/bench/convert-bench.js [--cases ID,ID] [--repeat N] [--keep] [--list]",
    "",
    "  --cases ID,ID  run only these cases (see --list); env BENCH_CASES",
    `  --repeat N     timed runs per tool (default 3; ${MIN_RUNS_NOT_SLOWER} at least for "not slower" cases); env BENCH_REPEAT`,
    "  --keep         keep the outputs in bench/work/out/ (default: removed after checking)",
    "  --list         list the cases and exit",
    "",
    "Inputs come from `bash bench/make-test-disks.sh` (bench/work/).",
  ].join("\n");
}

function parseOptions(argv: string[]): Options {
  const envCases = process.env["BENCH_CASES"];
  const envRepeat = process.env["BENCH_REPEAT"];
  const opts: Options = {
    cases: envCases ? splitList(envCases) : undefined,
    repeat: envRepeat ? parseRepeat(envRepeat) : 3,
    keep: false,
    list: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? splitOnce(arg, "=") : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) fail(`${flag} needs a value\n\n${usage()}`);
      return v;
    };
    switch (flag) {
      case "--cases":
        opts.cases = splitList(value());
        break;
      case "--repeat":
        opts.repeat = parseRepeat(value());
        break;
      case "--keep":
        opts.keep = true;
        break;
      case "--list":
        opts.list = true;
        break;
      case "-h":
      case "--help":
        console.log(usage());
        process.exit(0);
        break;
      default:
        fail(`unknown argument: ${arg}\n\n${usage()}`);
    }
  }
  return opts;
}

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return [s.slice(0, i), s.slice(i + 1)];
}

function splitList(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

function parseRepeat(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 100) fail(`--repeat must be an integer from 1 to 100, got ${s}`);
  return n;
}

function fail(message: string): never {
  console.error(`convert-bench: ${message}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// cases

type Tool = "chromogenic" | "qemu-img";
type QemuFormat = "raw" | "qcow2" | "vmdk" | "vpc" | "vdi";
/** Formats `qemu-img check` can check. */
const CHECKABLE: readonly QemuFormat[] = ["qcow2", "vmdk", "vdi"];

interface Variant {
  tool: Tool;
  /** Shown in the table's tool column. */
  label: string;
  /** argv (after the program) converting `input` to `output`. */
  args: (input: string, output: string) => string[];
}

interface Target {
  /** Label of the qemu-img variant compared against (for speed and size targets). */
  against?: string;
  kind: "faster" | "not-slower" | "size" | "rss";
  /** faster: qemu wall / ours wall ≥ value; not-slower: ours wall ≤ value × qemu wall;
   *  size: ours allocated ≤ value × qemu allocated; rss: ours peak RSS < value MiB. */
  value: number;
}

interface BenchCase {
  id: string;
  title: string;
  /** File name in bench/work/. */
  input: string;
  /** qemu-img's format names (vpc is VHD). */
  inputFormat: QemuFormat;
  outputFormat: QemuFormat;
  ours: Variant;
  qemu: Variant[];
  targets: Target[];
  /** Each run replaces the output the run before left (a script re-run); an untimed first run makes it. */
  replacesOutput?: boolean;
}

// --no-sync: qemu-img convert's default cache mode for the target is "unsafe" (it never fsyncs the output),
// so our fsync-before-rename is switched off to measure the same work; docs/PERFORMANCE.md gives its cost.
const ours = (outFmt: string, ...extra: string[]): Variant => ({
  tool: "chromogenic",
  label: ["chromogenic", ...extra].join(" "),
  args: (i, o) => [CLI, "convert", "-q", "--no-sync", "-O", outFmt, ...extra, i, o],
});

const qemu = (inFmt: string, outFmt: string, ...extra: string[]): Variant => ({
  tool: "qemu-img",
  label: ["qemu-img", ...extra].join(" "),
  args: (i, o) => ["convert", "-f", inFmt, "-O", outFmt, ...extra, i, o],
});

const RSS_TARGET: Target = { kind: "rss", value: 256 };

/** The benchmark's file server (bench/http-file-server.ts), started for the cases that read over HTTP. */
let httpOrigin: string | undefined;

/** Ours, reading the input from the benchmark's file server on loopback instead of from the file. */
const oursOverHttp = (outFmt: string): Variant => ({
  tool: "chromogenic",
  label: "chromogenic http://127.0.0.1",
  args: (i, o) => [CLI, "convert", "-q", "--no-sync", "-O", outFmt, `${httpOrigin}/${basename(i)}`, o],
});

/** Ours from the local file, as the reference an HTTP case is held to. */
const OURS_LOCAL_LABEL = "chromogenic (local file)";
const oursLocal = (outFmt: string): Variant => ({ ...ours(outFmt), label: OURS_LOCAL_LABEL });

const compressedTargets = (qemuC: string, qemuMt?: string): Target[] => [
  { kind: "faster", against: qemuC, value: 3 },
  ...(qemuMt ? [{ kind: "faster" as const, against: qemuMt, value: 2 }] : []),
  { kind: "size", against: qemuC, value: 1.05 },
  RSS_TARGET,
];

const CASES: BenchCase[] = [
  {
    id: "raw-qcow2",
    title: "Debian raw → qcow2",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "qcow2",
    ours: ours("qcow2"),
    qemu: [qemu("raw", "qcow2")],
    targets: [{ kind: "not-slower", against: "qemu-img", value: 1.1 }, RSS_TARGET],
  },
  {
    id: "raw-qcow2-replace",
    title: "Debian raw → qcow2 over an existing output",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "qcow2",
    ours: ours("qcow2"),
    qemu: [qemu("raw", "qcow2")],
    targets: [{ kind: "not-slower", against: "qemu-img", value: 1.1 }, RSS_TARGET],
    replacesOutput: true,
  },
  {
    id: "raw-qcow2-zlib",
    title: "Debian raw → qcow2 zlib",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "qcow2",
    ours: ours("qcow2", "-o", "compression_type=zlib"),
    qemu: [qemu("raw", "qcow2", "-c"), qemu("raw", "qcow2", "-c", "-m", "16", "-W")],
    targets: compressedTargets("qemu-img -c", "qemu-img -c -m 16 -W"),
  },
  {
    id: "raw-qcow2-zstd",
    title: "Debian raw → qcow2 zstd",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "qcow2",
    ours: ours("qcow2", "-o", "compression_type=zstd"),
    qemu: [
      qemu("raw", "qcow2", "-c", "-o", "compression_type=zstd"),
      qemu("raw", "qcow2", "-c", "-m", "16", "-W", "-o", "compression_type=zstd"),
    ],
    targets: compressedTargets("qemu-img -c -o compression_type=zstd", "qemu-img -c -m 16 -W -o compression_type=zstd"),
  },
  {
    id: "qcow2-zlib-raw",
    title: "Debian qcow2 zlib (by qemu-img -c) → raw",
    input: "debian-zlib.qcow2",
    inputFormat: "qcow2",
    outputFormat: "raw",
    ours: ours("raw"),
    qemu: [qemu("qcow2", "raw")],
    targets: [{ kind: "not-slower", against: "qemu-img", value: 1.1 }, RSS_TARGET],
  },
  {
    id: "raw-vmdk-stream",
    title: "Debian raw → VMDK streamOptimized",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "vmdk",
    ours: ours("vmdk", "-o", "subformat=streamOptimized"),
    qemu: [qemu("raw", "vmdk", "-o", "subformat=streamOptimized")],
    targets: [
      { kind: "faster", against: "qemu-img -o subformat=streamOptimized", value: 3 },
      { kind: "size", against: "qemu-img -o subformat=streamOptimized", value: 1.05 },
      RSS_TARGET,
    ],
  },
  {
    id: "vmdk-stream-raw",
    title: "Debian VMDK streamOptimized (by qemu-img) → raw",
    input: "debian-stream.vmdk",
    inputFormat: "vmdk",
    outputFormat: "raw",
    ours: ours("raw"),
    qemu: [qemu("vmdk", "raw")],
    targets: [{ kind: "not-slower", against: "qemu-img", value: 1.1 }, RSS_TARGET],
  },
  {
    id: "raw-vmdk-sparse",
    title: "Debian raw → VMDK monolithicSparse",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "vmdk",
    ours: ours("vmdk"),
    qemu: [qemu("raw", "vmdk")],
    targets: [{ kind: "not-slower", against: "qemu-img", value: 1.1 }, RSS_TARGET],
  },
  {
    id: "raw-vhd",
    title: "Debian raw → VHD dynamic",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "vpc",
    ours: ours("vhd"),
    qemu: [qemu("raw", "vpc", "-o", "force_size=on")],
    targets: [{ kind: "not-slower", against: "qemu-img -o force_size=on", value: 1.1 }, RSS_TARGET],
  },
  {
    id: "raw-vdi",
    title: "Debian raw → VDI dynamic",
    input: "debian.raw",
    inputFormat: "raw",
    outputFormat: "vdi",
    ours: ours("vdi"),
    qemu: [qemu("raw", "vdi")],
    targets: [{ kind: "not-slower", against: "qemu-img", value: 1.1 }, RSS_TARGET],
  },
  {
    id: "qcow2-zlib-http-raw",
    title: "Debian qcow2 zlib served over HTTP on loopback → raw",
    input: "debian-zlib.qcow2",
    inputFormat: "qcow2",
    outputFormat: "raw",
    ours: oursOverHttp("raw"),
    qemu: [oursLocal("raw"), qemu("qcow2", "raw")],
    targets: [{ kind: "not-slower", against: OURS_LOCAL_LABEL, value: 1.2 }, RSS_TARGET],
  },
  {
    id: "random-qcow2-zlib",
    title: "1 GiB incompressible raw → qcow2 zlib",
    input: "random.raw",
    inputFormat: "raw",
    outputFormat: "qcow2",
    ours: ours("qcow2", "-o", "compression_type=zlib"),
    qemu: [qemu("raw", "qcow2", "-c"), qemu("raw", "qcow2", "-c", "-m", "16", "-W")],
    targets: compressedTargets("qemu-img -c", "qemu-img -c -m 16 -W"),
  },
];

// ---------------------------------------------------------------------------------------------
// running

interface Sample {
  wall: number;
  cpu: number;
  rssKiB: number;
}

interface Row {
  caseId: string;
  variant: Variant;
  samples: Sample[];
  /** Median of each measurement over the samples. */
  median?: Sample;
  /**
   * The fastest run's wall time, which speed verdicts compare. This machine's noise only ever adds time: the
   * same command on the same warm input sometimes takes 2-8x as long, for either tool, with the kernel's page
   * copies themselves slower (docs/PERFORMANCE.md traces it to the host reclaiming freed guest memory). The
   * minimum of several runs is the usual estimate of a program's own time under one-sided noise; a median of
   * three decided verdicts by which tool drew more slow runs. Medians are reported beside it.
   */
  bestWall?: number;
  outAllocated?: number;
  outApparent?: number;
  error?: string;
  /** Ours only: result of qemu-img compare / check. */
  verify?: string;
  verifyDetail?: string;
  verifyFailed?: boolean;
}

function tail(text: string, lines = 12): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 * MiB });
  if (r.error) return { status: null, stdout: "", stderr: String(r.error) };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function warm(path: string): void {
  // Reads the whole input once so every timed run finds its data in the page cache.
  run("sh", ["-c", 'cat "$1" > /dev/null', "warm", path]);
}

/** Runs one variant once under /usr/bin/time. Throws with the tool's stderr on failure. */
function timedRun(variant: Variant, input: string, output: string, replace = false): Sample {
  if (!replace) rmSync(output, { force: true });
  run("sync", []);
  const timeFile = join(OUT_DIR, "time.txt");
  rmSync(timeFile, { force: true });
  const program = variant.tool === "chromogenic" ? NODE_BIN : "qemu-img";
  const r = run(TIME_BIN, ["-f", "%e %U %S %M", "-o", timeFile, program, ...variant.args(input, output)]);
  if (r.status !== 0) {
    const why = r.status === null ? r.stderr : `exit status ${r.status}`;
    const output = r.stderr || r.stdout;
    throw new Error(`${why}: ${tail(output, 1) || "no output"}\n${tail(output)}`);
  }
  const last = tail(readFileSync(timeFile, "utf8"), 1);
  const [e, u, s, m] = last.trim().split(/\s+/).map(Number);
  if ([e, u, s, m].some((x) => x === undefined || !Number.isFinite(x))) {
    throw new Error(`could not parse ${TIME_BIN} output: ${JSON.stringify(last)}`);
  }
  return { wall: e ?? 0, cpu: (u ?? 0) + (s ?? 0), rssKiB: m ?? 0 };
}

function outputPath(c: BenchCase, v: Variant, index: number): string {
  const ext = c.outputFormat;
  return join(OUT_DIR, `${c.id}.${v.tool}.${index}.${ext}`);
}

function verifyOurs(c: BenchCase, row: Row, input: string, output: string): void {
  const problems: string[] = [];
  const warnings: string[] = [];
  const cmp = run("qemu-img", ["compare", "-f", c.inputFormat, "-F", c.outputFormat, input, output]);
  if (cmp.status !== 0) {
    problems.push(`qemu-img compare: exit ${cmp.status}: ${tail(cmp.stdout + cmp.stderr, 4)}`);
  }
  if (CHECKABLE.includes(c.outputFormat)) {
    const chk = run("qemu-img", ["check", "-f", c.outputFormat, output]);
    // 0 clean; 3 leaked clusters only (wasted space, data intact); 1 check failed, 2 corruption.
    if (chk.status === 3) warnings.push(`qemu-img check: leaked clusters: ${tail(chk.stdout + chk.stderr, 3)}`);
    else if (chk.status !== 0) problems.push(`qemu-img check: exit ${chk.status}: ${tail(chk.stdout + chk.stderr, 4)}`);
  }
  row.verifyFailed = problems.length > 0;
  row.verify = row.verifyFailed ? "MISMATCH" : warnings.length ? "ok, leaks" : "ok";
  row.verifyDetail = [...problems, ...warnings].join("; ");
}

/**
 * Cases judged against qemu-img's own speed ("not slower") run at least this many times: they take a second or
 * less, so more runs cost little, and the more runs, the likelier each tool has one the noise left alone.
 */
const MIN_RUNS_NOT_SLOWER = 7;

function runsFor(c: BenchCase, opts: Options): number {
  return c.targets.some((t) => t.kind === "not-slower") ? Math.max(opts.repeat, MIN_RUNS_NOT_SLOWER) : opts.repeat;
}

function runCase(c: BenchCase, opts: Options): Row[] {
  const input = join(WORK, c.input);
  const variants = [c.ours, ...c.qemu];
  const rows: Row[] = variants.map((v) => ({ caseId: c.id, variant: v, samples: [] }));
  const runs = runsFor(c, opts);
  console.log(`\n== ${c.id}: ${c.title} (${runs} run${runs > 1 ? "s" : ""} each)`);
  warm(input);
  // The outputs the timed runs replace, made by an untimed run of each tool.
  for (const [i, v] of c.replacesOutput ? variants.entries() : []) {
    try {
      timedRun(v, input, outputPath(c, v, i));
    } catch {
      // the first timed run fails the same way and reports it
    }
  }
  for (let rep = 0; rep < runs; rep++) {
    variants.forEach((v, i) => {
      const row = rows[i];
      if (!row || row.error) return;
      const out = outputPath(c, v, i);
      try {
        const s = timedRun(v, input, out, c.replacesOutput);
        row.samples.push(s);
        console.log(
          `   run ${rep + 1}  ${v.label.padEnd(48)} ${s.wall.toFixed(2).padStart(7)} s wall ` +
            `${s.cpu.toFixed(2).padStart(7)} s cpu ${(s.rssKiB / 1024).toFixed(0).padStart(5)} MiB rss`,
        );
      } catch (err) {
        row.error = err instanceof Error ? err.message : String(err);
        console.error(`   FAILED: ${row.error.replace(/\n/g, "\n   | ")}`);
        rmSync(out, { force: true });
      }
    });
  }
  variants.forEach((v, i) => {
    const row = rows[i];
    if (!row || row.error || row.samples.length === 0) return;
    const out = outputPath(c, v, i);
    row.median = {
      wall: median(row.samples.map((s) => s.wall)),
      cpu: median(row.samples.map((s) => s.cpu)),
      rssKiB: median(row.samples.map((s) => s.rssKiB)),
    };
    row.bestWall = Math.min(...row.samples.map((s) => s.wall));
    const st = statSync(out);
    row.outAllocated = st.blocks * 512;
    row.outApparent = st.size;
    if (v.tool === "chromogenic") {
      verifyOurs(c, row, input, out);
      const what = `qemu-img compare${CHECKABLE.includes(c.outputFormat) ? " + check" : ""}`;
      if (row.verifyFailed) console.error(`   !!! OUTPUT MISMATCH (${v.label}): ${row.verifyDetail}`);
      else if (row.verifyDetail) console.error(`   warning (${v.label}): ${row.verifyDetail}`);
      else console.log(`   verify ${v.label}: ${what} ok`);
    }
    if (!opts.keep) rmSync(out, { force: true });
  });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// targets and report

interface TargetResult {
  caseId: string;
  text: string;
  status: "PASS" | "MISS" | "N/A";
  detail: string;
}

function evaluate(c: BenchCase, rows: Row[]): TargetResult[] {
  const oursRow = rows.find((r) => r.variant.tool === "chromogenic");
  const find = (label?: string) => rows.find((r) => r !== oursRow && r.variant.label === label);
  return c.targets.map((t): TargetResult => {
    const q = find(t.against);
    const base = { caseId: c.id };
    const na = (text: string, why: string): TargetResult => ({ ...base, text, status: "N/A", detail: why });
    const missing = (r: Row | undefined) => !r || !r.median || r.error !== undefined;
    switch (t.kind) {
      case "faster": {
        const text = `≥${t.value}× faster than \`${t.against}\``;
        if (missing(oursRow) || missing(q)) return na(text, "a run failed");
        const best = q!.bestWall! / oursRow!.bestWall!;
        const ratio = q!.median!.wall / oursRow!.median!.wall;
        return {
          ...base,
          text,
          status: best >= t.value ? "PASS" : "MISS",
          detail: `${best.toFixed(2)}× (medians ${ratio.toFixed(2)}×)`,
        };
      }
      case "not-slower": {
        const text = `within ${t.value}× of \`${t.against}\` wall time`;
        if (missing(oursRow) || missing(q)) return na(text, "a run failed");
        const best = oursRow!.bestWall! / q!.bestWall!;
        const ratio = oursRow!.median!.wall / q!.median!.wall;
        return {
          ...base,
          text,
          status: best <= t.value ? "PASS" : "MISS",
          detail: `ours/qemu = ${best.toFixed(2)}× (medians ${ratio.toFixed(2)}×)`,
        };
      }
      case "size": {
        const pct = Math.round((t.value - 1) * 100);
        const text = `output ≤${pct}% larger than \`${t.against}\``;
        if (missing(oursRow) || missing(q)) return na(text, "a run failed");
        const ratio = oursRow!.outAllocated! / q!.outAllocated!;
        const delta = (ratio - 1) * 100;
        return {
          ...base,
          text,
          status: ratio <= t.value ? "PASS" : "MISS",
          detail: `${delta >= 0 ? "+" : ""}${delta.toFixed(1)}%`,
        };
      }
      case "rss": {
        const text = `peak RSS < ${t.value} MiB`;
        if (missing(oursRow)) return na(text, "our run failed");
        const rss = oursRow!.median!.rssKiB / 1024;
        const worst = Math.max(...oursRow!.samples.map((s) => s.rssKiB)) / 1024;
        return {
          ...base,
          text,
          status: worst < t.value ? "PASS" : "MISS",
          detail: `${rss.toFixed(0)} MiB (max ${worst.toFixed(0)})`,
        };
      }
    }
  });
}

interface TableRow {
  cells: string[];
}

const HEADER = [
  "case",
  "tool",
  "wall s",
  "best s",
  "CPU s",
  "peak RSS MiB",
  "output MiB",
  "apparent MiB",
  "speed ratio",
  "size ratio",
  "check",
];

function tableRows(rows: Row[]): TableRow[] {
  const out: TableRow[] = [];
  for (const r of rows) {
    const isOurs = r.variant.tool === "chromogenic";
    // rows holds every case: compare each qemu-img row with chromogenic's row of the same case
    const oursRow = rows.find((o) => o.caseId === r.caseId && o.variant.tool === "chromogenic");
    if (r.error || !r.median) {
      const firstLine = (r.error ?? "no result").split("\n")[0] ?? "";
      out.push({ cells: [r.caseId, r.variant.label, "FAILED", "", "", "", "", "", "", "", firstLine.slice(0, 100)] });
      continue;
    }
    let speed = "";
    let size = "";
    if (!isOurs && oursRow?.median && !oursRow.error) {
      speed = `${(r.bestWall! / oursRow.bestWall!).toFixed(2)}×`;
      size = `${(oursRow.outAllocated! / r.outAllocated!).toFixed(3)}`;
    }
    out.push({
      cells: [
        r.caseId,
        r.variant.label,
        r.median.wall.toFixed(2),
        (r.bestWall ?? r.median.wall).toFixed(2),
        r.median.cpu.toFixed(2),
        (r.median.rssKiB / 1024).toFixed(0),
        (r.outAllocated! / MiB).toFixed(1),
        (r.outApparent! / MiB).toFixed(1),
        speed,
        size,
        isOurs ? (r.verify ?? "") : "",
      ],
    });
  }
  return out;
}

function textTable(rows: TableRow[]): string {
  const all = [HEADER, ...rows.map((r) => r.cells)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((cells) => (cells[i] ?? "").length)));
  const numeric = new Set([2, 3, 4, 5, 6, 7, 8, 9]);
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [fmt(HEADER), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map((r) => fmt(r.cells))].join("\n");
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, "\\|");
}

function markdownTable(rows: TableRow[]): string {
  const align = HEADER.map((_, i) => (i >= 2 && i <= 9 ? "---:" : "---"));
  return [
    `| ${HEADER.join(" | ")} |`,
    `| ${align.join(" | ")} |`,
    ...rows.map((r) => `| ${r.cells.map((c, i) => (i === 1 && c ? `\`${c}\`` : mdEscape(c))).join(" | ")} |`),
  ].join("\n");
}

function environment(repeat: number): string[] {
  const qv = run("qemu-img", ["--version"]).stdout.split("\n")[0] ?? "qemu-img ?";
  const cpu = cpus();
  const nodeV = run(NODE_BIN, ["--version"]).stdout.trim();
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM`,
    `tools: ${qv}; chromogenic under Node.js ${nodeV}`,
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
    `method: ${repeat} run${repeat > 1 ? "s" : ""} per tool (at least ${MIN_RUNS_NOT_SLOWER} for "not slower" cases), interleaved; ` +
      "speed verdicts compare best runs, medians beside; warm page cache, sync before each run; " +
      `${TIME_BIN} -f "%e %U %S %M"`,
  ];
}

// ---------------------------------------------------------------------------------------------

/**
 * Starts bench/http-file-server.js over bench/work/ and waits for its port. Synchronously: the benchmark runs
 * every tool with spawnSync, so it has no event loop to wait in; the server is a process of its own.
 */
function startFileServer(): { process: ChildProcess; origin: string } {
  const portFile = join(OUT_DIR, "http-port.txt");
  rmSync(portFile, { force: true });
  const child = spawn(
    "sh",
    ["-c", `exec "$0" "$1" "$2" > "$3"`, NODE_BIN, join(ROOT, "dist", "bench", "http-file-server.js"), WORK, portFile],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  for (let waited = 0; waited < 100; waited++) {
    const port = existsSync(portFile) ? readFileSync(portFile, "utf8").trim() : "";
    if (/^\d+$/.test(port)) return { process: child, origin: `http://127.0.0.1:${port}` };
    run("sleep", ["0.1"]);
  }
  child.kill("SIGKILL");
  return fail("the benchmark's HTTP file server did not start");
}

function main(): number {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.list) {
    for (const c of CASES) {
      console.log(
        `${c.id.padEnd(20)} ${c.title}  [${c.input}; ${[c.ours, ...c.qemu].map((v) => v.label).join(" | ")}]`,
      );
    }
    return 0;
  }
  let selected = CASES;
  if (opts.cases) {
    const unknown = opts.cases.filter((id) => !CASES.some((c) => c.id === id));
    if (unknown.length) fail(`unknown case(s): ${unknown.join(", ")} (known: ${CASES.map((c) => c.id).join(", ")})`);
    selected = CASES.filter((c) => opts.cases!.includes(c.id));
  }

  if (!existsSync(TIME_BIN)) fail(`${TIME_BIN} not found (apt-get install -y time)`);
  if (run("qemu-img", ["--version"]).status !== 0) fail("qemu-img not found (apt-get install -y qemu-utils)");
  const missingInputs = [...new Set(selected.map((c) => c.input))].filter((f) => !existsSync(join(WORK, f)));
  if (missingInputs.length) {
    fail(`missing input(s) in bench/work/: ${missingInputs.join(", ")}; run: bash bench/make-test-disks.sh`);
  }
  mkdirSync(OUT_DIR, { recursive: true });

  const help = run(NODE_BIN, [CLI, "--help"]);
  if (help.status !== 0) {
    console.error(
      `convert-bench: warning: \`chromogenic --help\` failed; our rows will likely fail:\n${tail(help.stderr, 6)}`,
    );
  }

  const env = environment(opts.repeat);
  console.log(env.join("\n"));

  const allRows: Row[] = [];
  const targets: TargetResult[] = [];
  const server = selected.some((c) => c.ours.label === oursOverHttp("raw").label) ? startFileServer() : undefined;
  try {
    for (const c of selected) {
      if (server) httpOrigin = server.origin;
      const rows = runCase(c, opts);
      allRows.push(...rows);
      targets.push(...evaluate(c, rows));
    }
  } finally {
    server?.process.kill("SIGTERM");
  }
  rmSync(join(OUT_DIR, "time.txt"), { force: true });

  const table = tableRows(allRows);
  console.log(`\n${textTable(table)}\n`);
  console.log("speed ratio = qemu-img best wall / chromogenic best wall (>1: chromogenic is faster);");
  console.log("size ratio = chromogenic output / qemu-img output (allocated bytes; <1: chromogenic is smaller)\n");
  console.log("targets:");
  for (const t of targets) {
    console.log(`  ${t.status.padEnd(4)}  ${t.caseId.padEnd(18)} ${t.text.replace(/`/g, "")}: ${t.detail}`);
  }

  const crashed = allRows.filter((r) => r.error);
  const mismatched = allRows.filter((r) => r.verifyFailed);
  const md = [
    "# Conversion benchmark results",
    "",
    ...env.map((l) => `- ${l}`),
    "",
    markdownTable(table),
    "",
    "Wall s is the median run, best s the fastest; CPU and RSS are medians. Output MiB is allocated bytes (stat",
    "blocks × 512); apparent MiB is the file size. Speed ratio is qemu-img's best wall ÷ chromogenic's (>1 means",
    "chromogenic is faster): speed verdicts compare best runs, since this machine's noise only adds time (see",
    "Row.bestWall in bench/convert-bench.ts); the medians' ratio is beside each. Size ratio is chromogenic output ÷",
    "qemu-img output.",
    "",
    "| case | target | result | measured |",
    "| --- | --- | --- | ---: |",
    ...targets.map((t) => `| ${t.caseId} | ${mdEscape(t.text)} | ${t.status} | ${mdEscape(t.detail)} |`),
    "",
  ].join("\n");
  writeFileSync(RESULTS_MD, md);
  const json = {
    environment: env,
    rows: allRows.map(({ variant, ...r }) => ({ ...r, tool: variant.tool, label: variant.label })),
    targets,
  };
  writeFileSync(RESULTS_JSON, JSON.stringify(json, null, 2) + "\n");
  console.log(`\nMarkdown written to ${RESULTS_MD} (raw samples: ${RESULTS_JSON})`);

  const pass = targets.filter((t) => t.status === "PASS").length;
  const miss = targets.filter((t) => t.status === "MISS").length;
  const na = targets.filter((t) => t.status === "N/A").length;
  console.log(`targets: ${pass} PASS, ${miss} MISS${na ? `, ${na} N/A` : ""}`);

  if (mismatched.length) {
    console.error("\n!!! OUTPUT MISMATCH !!!");
    for (const r of mismatched) console.error(`  ${r.caseId} / ${r.variant.label}: ${r.verifyDetail}`);
  }
  if (crashed.length) {
    console.error("\nFAILED runs:");
    for (const r of crashed) console.error(`  ${r.caseId} / ${r.variant.label}: ${(r.error ?? "").split("\n")[0]}`);
  }
  return crashed.length || mismatched.length ? 1 : 0;
}

process.exitCode = main();
