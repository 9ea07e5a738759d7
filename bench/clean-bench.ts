/**
 * Cleaning benchmark: `chromogenic clean` vs `virt-sysprep` on the same 4 GiB Debian image, in the same run.
 *
 *   bash bench/make-test-disks.sh && npm run bench:clean [-- --repeat 3 --keep]
 *
 * bench/work/debian.raw is converted to qcow2 once, untimed (bench/work/clean/debian.qcow2). Then, `--repeat`
 * times (default 1, or $BENCH_REPEAT), interleaved:
 *   - ours: `chromogenic clean debian.qcow2 out.qcow2` (qcow2 in → qcow2 out, default operations), timed end
 *     to end; the report's timingsMs.clean is the cleaning step alone (no attach, no format conversion);
 *   - virt-sysprep: a copy of the same qcow2 is made untimed, then `virt-sysprep --format qcow2 -a COPY
 *     --operations defaults` (in place, its only mode) is timed, with the environment libguestfs needs here
 *     (direct backend, TCG forced, the appliance kernel from test/infra/libguestfs-kernel.sh).
 * The median of each is printed with the ratio. Our output is checked with `qemu-img check`, untimed.
 *
 * Targets: faster than virt-sysprep end to end; the cleaning step under 5 s. Exit 0 when both tools ran
 * (a missed target is printed, not fatal), 1 when a tool failed or the input is missing.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchFail, CLI, machineLine, median, NODE_BIN, ROOT, WORK, repeatKeepOptions } from "./bench-context.js";

const DIR = join(WORK, "clean");
const RAW = join(WORK, "debian.raw");
const INPUT = join(DIR, "debian.qcow2");
const CLEAN_STEP_TARGET_MS = 5000;

function fail(message: string): never {
  return benchFail("clean-bench", message);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const started = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: "utf8", env, maxBuffer: 64 * 2 ** 20 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.error) fail(`${cmd} could not run: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, seconds };
}

function runOk(cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
  const r = run(cmd, args, env);
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr || r.stdout}`);
  return r;
}

/** The environment virt-sysprep needs on this kind of machine (see docs/CLEANING-VS-VIRT-SYSPREP.md). */
function libguestfsEnv(): NodeJS.ProcessEnv {
  const out = runOk("bash", [join(ROOT, "test", "infra", "libguestfs-kernel.sh")]).stdout;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const line of out.split("\n")) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

function main(): number {
  const opts = repeatKeepOptions("clean-bench", process.argv.slice(2));
  if (process.getuid?.() !== 0) fail("needs root (loop devices and mounts)");
  if (!existsSync(RAW)) fail(`${RAW} is missing: run \`bash bench/make-test-disks.sh\` first`);
  if (run("sh", ["-c", "command -v virt-sysprep"]).status !== 0)
    fail("virt-sysprep is missing: apt-get install libguestfs-tools (scripts/setup.sh --test installs it)");
  mkdirSync(DIR, { recursive: true });
  console.log(machineLine(opts.repeat));

  console.log(`untimed: qemu-img convert -O qcow2 ${RAW} -> ${INPUT}`);
  rmSync(INPUT, { force: true });
  runOk("qemu-img", ["convert", "-O", "qcow2", RAW, INPUT]);
  runOk("sh", ["-c", `cat '${INPUT}' > /dev/null`]); // a warm page cache for both tools
  const env = libguestfsEnv();
  const state = join(DIR, "state");

  const ours: number[] = [];
  const cleanStep: number[] = [];
  const attach: number[] = [];
  const commit: number[] = [];
  const theirs: number[] = [];
  let changes = 0;
  for (let i = 0; i < opts.repeat; i++) {
    const output = join(DIR, `ours-${i}.qcow2`);
    const report = join(DIR, `ours-${i}.json`);
    rmSync(output, { force: true });
    runOk("sync", []);
    const r = runOk(NODE_BIN, [CLI, "clean", "--report", report, INPUT, output], {
      ...process.env,
      CHROMOGENIC_STATE_DIR: state,
    });
    ours.push(r.seconds);
    const rep = JSON.parse(readFileSync(report, "utf8")) as {
      timingsMs: { attach: number; clean: number; commit: number };
      changes: unknown[];
    };
    cleanStep.push(rep.timingsMs.clean);
    attach.push(rep.timingsMs.attach);
    commit.push(rep.timingsMs.commit);
    changes = rep.changes.length;
    const check = run("qemu-img", ["check", output]);
    if (check.status !== 0) fail(`qemu-img check of our output failed:\n${check.stdout}${check.stderr}`);
    if (!opts.keep) rmSync(output, { force: true });

    const copy = join(DIR, `virt-sysprep-${i}.qcow2`);
    copyFileSync(INPUT, copy); // untimed
    runOk("sync", []);
    const v = runOk("virt-sysprep", ["--format", "qcow2", "-a", copy, "--operations", "defaults"], env);
    theirs.push(v.seconds);
    if (!opts.keep) rmSync(copy, { force: true });
    console.log(
      `run ${i + 1}: chromogenic clean ${r.seconds.toFixed(2)} s (attach ${rep.timingsMs.attach} ms, clean ` +
        `${rep.timingsMs.clean} ms, commit ${rep.timingsMs.commit} ms, ${changes} changes); virt-sysprep ${v.seconds.toFixed(2)} s`,
    );
  }

  const o = median(ours);
  const t = median(theirs);
  const c = median(cleanStep);
  const lines = [
    "",
    "| tool | wall (s, median) |",
    "| --- | ---: |",
    `| chromogenic clean (qcow2 → qcow2, end to end) | ${o.toFixed(2)} |`,
    `| — of which attach / clean / commit | ${(median(attach) / 1000).toFixed(2)} / ${(c / 1000).toFixed(2)} / ${(median(commit) / 1000).toFixed(2)} |`,
    `| virt-sysprep --operations defaults (in place) | ${t.toFixed(2)} |`,
    "",
    `speed ratio (virt-sysprep ÷ chromogenic): ${(t / o).toFixed(1)}×`,
    `target: faster than virt-sysprep ............ ${o < t ? "PASS" : "MISS"}`,
    `target: cleaning step under ${CLEAN_STEP_TARGET_MS / 1000} s ........... ${c < CLEAN_STEP_TARGET_MS ? "PASS" : "MISS"} (${c} ms)`,
  ];
  console.log(lines.join("\n"));
  writeFileSync(
    join(WORK, "clean-results.json"),
    JSON.stringify({ ours, cleanStepMs: cleanStep, attachMs: attach, commitMs: commit, virtSysprep: theirs }, null, 2) +
      "\n",
  );
  if (!opts.keep) rmSync(INPUT, { force: true });
  return 0;
}

process.exit(main());
