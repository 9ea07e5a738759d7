/**
 * Xen → KVM benchmark: `chromogenic bootable` vs `virt-v2v -i disk … -o local` on the same Xen-style 4 GiB
 * Debian disk, in the same run, and both outputs booted.
 *
 *   bash bench/make-test-disks.sh && npm run bench:bootable [-- --cases ID,ID --repeat N --keep]
 *
 * Inputs, made once from bench/work/debian.raw with virt-customize (untimed, cached in bench/work/bootable/):
 *   xen.raw          the disk as XenServer/XCP and AWS hand it to pygrub: fstab and the kernel command line on
 *                    /dev/xvda1, a getty on hvc0, only a grub-legacy /boot/grub/menu.lst, no boot code;
 *   xen-only.raw     the same, its initramfs rebuilt with initramfs-tools' MODULES=list holding only the Xen
 *                    block and network frontends and ext4: it cannot find its root on virtio until rebuilt.
 * Cases (each `--repeat` times, interleaved, the input's page cache warmed first):
 *   no-rebuild       xen.raw:      no guest program has to run (Debian's initramfs already has virtio)
 *   rebuild          xen-only.raw: the initramfs lacks virtio (ours appends the guest's own virtio modules to
 *                    it, running nothing; with `bootable --initramfs-guest-tool`, the fallback, the guest's
 *                    update-initramfs runs in the libguestfs appliance as virt-v2v's does)
 * For each: `chromogenic bootable -O qcow2 INPUT OUT` and `virt-v2v -i disk -if raw INPUT -o local -os DIR
 * -of qcow2`, under /usr/bin/time (wall, CPU, peak RSS of the process tree's largest member). Untimed, every
 * output is booted in qemu (TCG, virtio) to a login prompt, or its failure is recorded.
 *
 * Targets (issue 16): ≥ 10× faster end to end without a rebuild, ≥ 3× with one; our peak RSS < 256 MiB; both
 * outputs boot. Exit 0 when every tool ran (a missed target is printed, not fatal), 1 otherwise.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bootToLogin } from "../test/helpers/boot-in-qemu.js";
import { libguestfsEnv } from "../test/helpers/virt-sysprep.js";
import { CLI, machineLine, median, NODE_BIN, ROOT, WORK } from "./bench-context.js";

const DIR = join(WORK, "bootable");
const RAW = join(WORK, "debian.raw");
const RSS_TARGET_MIB = 256;
/**
 * Loaded into our process before the CLI: writes its own peak RSS (KiB) at exit. /usr/bin/time's figure is the
 * largest of the whole process tree, which for the rebuild case is the libguestfs appliance's qemu.
 */
const SELF_RSS = join(DIR, "self-rss.txt");
const SELF_RSS_HOOK = join(DIR, "self-rss.mjs");
const SELF_RSS_HOOK_SOURCE =
  'import { writeFileSync } from "node:fs";\n' +
  'process.on("exit", () => writeFileSync(process.env.BENCH_SELF_RSS, String(process.resourceUsage().maxRSS)));\n';

/** The Xen edits, as virt-customize runs them inside its appliance (the kernel version is the guest's own). */
const XEN_STYLE = [
  "--write",
  "/etc/fstab:/dev/xvda1 / ext4 defaults,errors=remount-ro 0 1",
  "--link",
  "/lib/systemd/system/serial-getty@.service:/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
  "--run-command",
  [
    "v=$(ls /lib/modules | sort -V | tail -n 1)",
    "mkdir -p /boot/grub",
    'printf "default 0\\ntimeout 3\\n\\ntitle Debian (Xen)\\n\\troot (hd0,0)\\n\\tkernel /boot/vmlinuz-%s root=/dev/xvda1 ro console=hvc0\\n\\tinitrd /boot/initrd.img-%s\\n" "$v" "$v" > /boot/grub/menu.lst',
  ].join("; "),
  "--truncate",
  "/etc/machine-id",
];
const XEN_ONLY_INITRAMFS = [
  "--run-command",
  [
    "sed -i 's/^MODULES=.*/MODULES=list/' /etc/initramfs-tools/initramfs.conf",
    "printf 'xen-blkfront\\nxen-netfront\\next4\\n' >> /etc/initramfs-tools/modules",
    "update-initramfs -u -k all",
  ].join("; "),
  "--truncate",
  "/etc/machine-id",
];

interface Case {
  readonly id: string;
  readonly input: string;
  readonly what: string;
  readonly targetRatio: number;
}

const CASES: readonly Case[] = [
  { id: "no-rebuild", input: "xen.raw", what: "no guest program runs", targetRatio: 10 },
  { id: "rebuild", input: "xen-only.raw", what: "initramfs without virtio", targetRatio: 3 },
];

function fail(message: string): never {
  process.stderr.write(`bootable-bench: ${message}\n`);
  process.exit(1);
}

interface Options {
  readonly repeat: number;
  readonly keep: boolean;
  readonly cases: readonly Case[];
}

function parseOptions(argv: string[]): Options {
  let repeat = Number(process.env["BENCH_REPEAT"] ?? 1);
  let keep = false;
  let ids = (process.env["BENCH_CASES"] ?? CASES.map((c) => c.id).join(",")).split(",");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--repeat") repeat = Number(argv[++i]);
    else if (argv[i] === "--keep") keep = true;
    else if (argv[i] === "--cases") ids = (argv[++i] ?? "").split(",");
    else
      fail(
        `unknown option ${argv[i]}\nusage: node dist/bench/bootable-bench.js [--cases ${CASES.map((c) => c.id).join(",")}] ` +
          "[--repeat N] [--keep]  (env BENCH_REPEAT, BENCH_CASES)",
      );
  }
  if (!Number.isInteger(repeat) || repeat < 1) fail("--repeat needs a positive integer");
  const cases = ids.map((id) => CASES.find((c) => c.id === id) ?? fail(`no case ${id}`));
  return { repeat, keep, cases };
}

interface Timed {
  readonly status: number | null;
  readonly output: string;
  readonly wall: number;
  readonly cpu: number;
  readonly rssMiB: number;
  /** Our own process's peak (chromogenic only). */
  selfRssMiB?: number;
}

/** `cmd args` under /usr/bin/time: wall and CPU seconds, the peak RSS, and what it printed. */
function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Timed {
  const stats = join(DIR, "time.txt");
  const r = spawnSync("/usr/bin/time", ["-o", stats, "-f", "%e %U %S %M", cmd, ...args], {
    encoding: "utf8",
    env,
    maxBuffer: 256 * 2 ** 20,
  });
  if (r.error) fail(`${cmd} could not run: ${r.error.message}`);
  const last = readFileSync(stats, "utf8").trim().split("\n").at(-1) ?? "";
  const [wall, user, sys, rssKiB] = last.split(" ").map(Number);
  if (wall === undefined || Number.isNaN(wall)) fail(`/usr/bin/time printed ${JSON.stringify(last)}`);
  return {
    status: r.status,
    output: `${r.stdout}${r.stderr}`,
    wall,
    cpu: (user ?? 0) + (sys ?? 0),
    rssMiB: (rssKiB ?? 0) / 1024,
  };
}

function runOk(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, maxBuffer: 64 * 2 ** 20 });
  if (r.error) fail(`${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr || r.stdout}`);
  return r.stdout;
}

/** `name` in DIR made by copying `from` and running virt-customize on the copy; cached. */
function customized(name: string, from: string, edits: readonly string[], env: NodeJS.ProcessEnv): string {
  const path = join(DIR, name);
  if (existsSync(path)) return path;
  const partial = `${path}.partial`;
  console.log(`untimed: making ${name} from ${from} with virt-customize (a few minutes under TCG)`);
  runOk("cp", ["--sparse=always", from, partial]);
  runOk("virt-customize", ["--format", "raw", "-a", partial, "--no-network", ...edits], env);
  runOk("mv", [partial, path]);
  return path;
}

/** "yes (41 s)" or "no: WHY (last console line)" — the output booted in qemu (TCG, virtio) to a login prompt. */
async function boots(disk: string): Promise<string> {
  try {
    const r = await bootToLogin(disk, { format: "qcow2", timeoutMs: 360_000 });
    return `yes (${r.seconds.toFixed(0)} s)`;
  } catch (e) {
    const lines = (e as Error).message.split("\n");
    const why = /no login prompt: ([^;]*)/.exec(lines[0] ?? "")?.[1] ?? lines[0] ?? "";
    const last =
      lines
        .map((l) => l.trim())
        .filter(Boolean)
        .slice(1)
        .at(-1) ?? "(nothing)";
    return `no: ${why}; console ends "${last.slice(0, 80)}"`;
  }
}

interface Row {
  readonly id: string;
  readonly ours: Timed[];
  readonly theirs: Timed[];
  oursBoots: string;
  theirsBoots: string;
}

async function runCase(c: Case, input: string, opts: Options, env: NodeJS.ProcessEnv): Promise<Row> {
  runOk("sh", ["-c", `cat '${input}' > /dev/null`]);
  const row: Row = { id: c.id, ours: [], theirs: [], oursBoots: "", theirsBoots: "" };
  for (let i = 0; i < opts.repeat; i++) {
    const ours = join(DIR, `ours-${c.id}.qcow2`);
    const report = join(DIR, `ours-${c.id}.json`);
    rmSync(ours, { force: true });
    runOk("sync", []);
    rmSync(SELF_RSS, { force: true });
    const o = timed(
      NODE_BIN,
      [CLI, "bootable", "-q", "-O", "qcow2", "--report", report, input, ours],
      // NODE_OPTIONS, not an argument: the CLI re-executes itself in a mount namespace of its own.
      {
        ...env,
        CHROMOGENIC_STATE_DIR: join(DIR, "state"),
        BENCH_SELF_RSS: SELF_RSS,
        NODE_OPTIONS: `--import=${SELF_RSS_HOOK}`,
      },
    );
    if (o.status !== 0) fail(`chromogenic bootable exited ${o.status}:\n${o.output}`);
    o.selfRssMiB = Number(readFileSync(SELF_RSS, "utf8")) / 1024;
    row.ours.push(o);

    const v2v = join(DIR, `v2v-${c.id}`);
    rmSync(v2v, { recursive: true, force: true });
    mkdirSync(v2v);
    runOk("sync", []);
    const t = timed(
      "virt-v2v",
      ["-i", "disk", "-if", "raw", input, "-o", "local", "-os", v2v, "-of", "qcow2", "-on", "guest"],
      env,
    );
    if (t.status !== 0) fail(`virt-v2v exited ${t.status}:\n${t.output.slice(-4000)}`);
    row.theirs.push(t);
    console.log(
      `${c.id} run ${i + 1}: chromogenic ${o.wall.toFixed(1)} s (RSS ${o.selfRssMiB.toFixed(0)} MiB, with ` +
        `children ${o.rssMiB.toFixed(0)} MiB); ` +
        `virt-v2v ${t.wall.toFixed(1)} s (RSS ${t.rssMiB.toFixed(0)} MiB)`,
    );
  }
  // The last run's outputs, booted untimed.
  row.oursBoots = await boots(join(DIR, `ours-${c.id}.qcow2`));
  row.theirsBoots = await boots(join(DIR, `v2v-${c.id}`, "guest-sda"));
  if (!opts.keep) {
    rmSync(join(DIR, `ours-${c.id}.qcow2`), { force: true });
    rmSync(join(DIR, `v2v-${c.id}`), { recursive: true, force: true });
  }
  return row;
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  process.chdir(ROOT); // libguestfsEnv runs test/infra/libguestfs-kernel.sh by its relative path
  if (process.getuid?.() !== 0) fail("needs root (loop devices and mounts)");
  if (!existsSync(RAW)) fail(`${RAW} is missing: run \`bash bench/make-test-disks.sh\` first`);
  for (const tool of ["virt-v2v", "virt-customize", "nbdkit", "nbdcopy", "qemu-system-x86_64"])
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0)
      fail(`${tool} is missing: scripts/setup.sh --test installs it`);
  mkdirSync(DIR, { recursive: true });
  writeFileSync(SELF_RSS_HOOK, SELF_RSS_HOOK_SOURCE);
  console.log(machineLine(opts.repeat));
  const env = await libguestfsEnv();
  const xen = customized("xen.raw", RAW, XEN_STYLE, env);
  const inputs: Record<string, string> = { "xen.raw": xen };
  if (opts.cases.some((c) => c.input === "xen-only.raw"))
    inputs["xen-only.raw"] = customized("xen-only.raw", xen, XEN_ONLY_INITRAMFS, env);

  const rows: Row[] = [];
  for (const c of opts.cases) rows.push(await runCase(c, inputs[c.input]!, opts, env));

  const lines = [
    "",
    "| case | chromogenic bootable: wall s (median) / CPU s / peak RSS MiB (own; largest child) | virt-v2v -o local: wall s / CPU s / peak RSS MiB (largest process) | speed ratio | chromogenic's output boots | virt-v2v's output boots |",
    "| --- | ---: | ---: | ---: | --- | --- |",
  ];
  const verdicts: string[] = [];
  for (const r of rows) {
    const c = CASES.find((x) => x.id === r.id)!;
    const o = median(r.ours.map((x) => x.wall));
    const t = median(r.theirs.map((x) => x.wall));
    const rss = Math.max(...r.ours.map((x) => x.selfRssMiB ?? 0));
    const treeRss = Math.max(...r.ours.map((x) => x.rssMiB));
    lines.push(
      `| ${r.id} (${c.what}) | ${o.toFixed(1)} / ${median(r.ours.map((x) => x.cpu)).toFixed(1)} / ${rss.toFixed(0)}; ${treeRss.toFixed(0)} | ` +
        `${t.toFixed(1)} / ${median(r.theirs.map((x) => x.cpu)).toFixed(1)} / ${Math.max(...r.theirs.map((x) => x.rssMiB)).toFixed(0)} | ` +
        `${(t / o).toFixed(1)}× | ${r.oursBoots} | ${r.theirsBoots} |`,
    );
    verdicts.push(
      `target ${r.id}: ≥ ${c.targetRatio}× faster ... ${t / o >= c.targetRatio ? "PASS" : "MISS"} (${(t / o).toFixed(1)}×)`,
      `target ${r.id}: peak RSS < ${RSS_TARGET_MIB} MiB ... ${rss < RSS_TARGET_MIB ? "PASS" : "MISS"} (${rss.toFixed(0)} MiB)`,
      `target ${r.id}: our output boots ... ${r.oursBoots.startsWith("yes") ? "PASS" : "MISS"}`,
    );
  }
  console.log([...lines, "", ...verdicts].join("\n"));
  writeFileSync(join(WORK, "bootable-results.md"), lines.join("\n") + "\n");
  writeFileSync(join(WORK, "bootable-results.json"), JSON.stringify(rows, null, 2) + "\n");
  return 0;
}

process.exit(await main());
