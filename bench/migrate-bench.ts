/**
 * Migration benchmark: `chromogenic migrate` RegionOne → RegionTwo against the floor, a plain Glance
 * download plus upload of the same image with curl, in the same run, on the OpenStack test stack
 * (test/infra/openstack/aio.sh).
 *
 *   bash bench/make-test-disks.sh && bash test/infra/openstack/aio.sh start && npm run bench:migrate
 *
 * Setup (untimed): bench/work/debian.raw (4 GiB virtual, ≈0.85 GiB allocated) is converted once to an
 * uncompressed qcow2, what a Nova snapshot of that disk is (cached as bench/work/debian.qcow2), and
 * uploaded to RegionOne as the source image. Then `--repeat` rounds (default 3), each timing, in turn:
 *
 *   floor            curl GET /v2/images/{id}/file from RegionOne into a file, then POST /v2/images + curl
 *                    PUT /file into RegionTwo (one temporary copy: what a user does by hand)
 *   curl | curl      the same as one pipe, no temporary file (reference: the stricter streaming floor)
 *   glance-download  RegionTwo's Glance pulls the image from RegionOne's itself (reference, when offered)
 *   chromogenic      chromogenic migrate --from bench-r1 --to bench-r2 --image ID --json, with the clouds in a
 *                    clouds.yaml written to a temporary folder (OS_CLIENT_CONFIG_FILE)
 *
 * and the medians are compared (target: chromogenic ≤ 1.2 × floor). Temporary disk use is sampled every
 * 100 ms as the allocated bytes under the run's folder, which holds chromogenic's state directory
 * (CHROMOGENIC_STATE_DIR), its --work-dir and TMPDIR (target: ≤ the image's allocated bytes); the floor's
 * is its downloaded file. Every copy is checked, untimed: the same sha512 as the source, or for a converted
 * result `qemu-img compare` of its download with debian.raw. Every image the bench created is deleted at
 * the end, whatever happened. curl reads the token from a 0600 header file, never from its command line.
 *
 * Exit status: 0 when everything ran (a missed target is not a failure); 1 when something failed.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { readdir, lstat } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { CLI, median, NODE_BIN, ROOT, WORK } from "./bench-context.js";

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** The test stack's fixed endpoints and user (test/infra/openstack/aio.sh); overridable for another cloud. */
const STACK = {
  authUrl: process.env.BENCH_OS_AUTH_URL ?? "http://127.0.0.1:5000/v3",
  username: process.env.BENCH_OS_USERNAME ?? "user-a",
  password: process.env.BENCH_OS_PASSWORD ?? "pass-a",
  project: process.env.BENCH_OS_PROJECT_NAME ?? "proj-a",
  regionOne: process.env.BENCH_REGION_ONE ?? "RegionOne",
  regionTwo: process.env.BENCH_REGION_TWO ?? "RegionTwo",
};

interface Options {
  source: "qcow2" | "qcow2-zlib" | "raw";
  skipMigrate: boolean;
  skipPipe: boolean;
  skipServerSide: boolean;
  keep: boolean;
  repeat: number;
}

function usage(): string {
  return [
    "usage: node dist/bench/migrate-bench.js [--source qcow2|qcow2-zlib|raw] [--floor-only] [--no-pipe] [--keep]",
    "",
    "  --source FMT   the source image uploaded to RegionOne (default qcow2: debian.raw as a Nova snapshot",
    "                 would store it; qcow2-zlib: bench/work/debian-zlib.qcow2, like a published cloud image;",
    "                 raw: debian.raw itself, 4 GiB on the wire)",
    "  --floor-only   measure only the curl floor (no chromogenic run)",
    "  --no-pipe      skip the `curl | curl` reference run",
    "  --no-server-side  skip the glance-download reference run (RegionTwo's Glance pulls from RegionOne's)",
    "  --repeat N     rounds, each measurement once per round, interleaved; medians reported (default 3;",
    "                 env BENCH_REPEAT)",
    "  --keep         keep the images and the run folder (default: everything deleted)",
  ].join("\n");
}

function parseOptions(argv: string[]): Options {
  const opts: Options = {
    source: "qcow2",
    skipMigrate: false,
    skipPipe: false,
    skipServerSide: false,
    keep: false,
    repeat: Number(process.env.BENCH_REPEAT ?? 3),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--source") {
      const v = argv[++i];
      if (v !== "qcow2" && v !== "qcow2-zlib" && v !== "raw")
        fail(`--source must be qcow2, qcow2-zlib or raw\n\n${usage()}`);
      opts.source = v;
    } else if (arg === "--floor-only") opts.skipMigrate = true;
    else if (arg === "--no-pipe") opts.skipPipe = true;
    else if (arg === "--no-server-side") opts.skipServerSide = true;
    else if (arg === "--keep") opts.keep = true;
    else if (arg === "--repeat") opts.repeat = Number(argv[++i]);
    else if (arg === "-h" || arg === "--help") {
      console.log(usage());
      process.exit(0);
    } else fail(`unknown argument ${arg}\n\n${usage()}`);
  }
  if (!Number.isInteger(opts.repeat) || opts.repeat < 1) fail(`--repeat must be a positive integer\n\n${usage()}`);
  return opts;
}

function fail(message: string): never {
  console.error(`migrate-bench: ${message}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Keystone and Glance over plain HTTP (the bench must not depend on the client it measures)

interface Session {
  token: string;
  expiresAt: number;
  glance: Record<string, string>;
}

async function authenticate(): Promise<Session> {
  const r = await fetch(`${STACK.authUrl}/auth/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ["password"],
          password: { user: { name: STACK.username, domain: { name: "Default" }, password: STACK.password } },
        },
        scope: { project: { name: STACK.project, domain: { name: "Default" } } },
      },
    }),
  });
  if (r.status !== 201) fail(`Keystone refused the bench user (HTTP ${r.status}); is the stack running?`);
  const body = (await r.json()) as {
    token: {
      expires_at: string;
      catalog: { type: string; endpoints: { interface: string; region_id: string; url: string }[] }[];
    };
  };
  const glance: Record<string, string> = {};
  for (const s of body.token.catalog) {
    if (s.type !== "image") continue;
    for (const e of s.endpoints) if (e.interface === "public") glance[e.region_id] = e.url.replace(/\/+$/, "");
  }
  for (const region of [STACK.regionOne, STACK.regionTwo]) {
    if (!glance[region]) fail(`no public image endpoint for ${region} in the catalog`);
  }
  return { token: r.headers.get("x-subject-token")!, expiresAt: Date.parse(body.token.expires_at), glance };
}

let session: Session | undefined;
/** A token with at least 60 s left (the test stack's tokens live 90 s). */
async function token(): Promise<Session> {
  if (!session || session.expiresAt - Date.now() < 60_000) session = await authenticate();
  return session;
}

async function glanceCall(region: string, method: string, path: string, body?: unknown): Promise<Response> {
  const s = await token();
  return fetch(`${s.glance[region]}${path}`, {
    method,
    headers: { "x-auth-token": s.token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createImage(region: string, name: string, diskFormat: string): Promise<string> {
  const r = await glanceCall(region, "POST", "/v2/images", {
    name,
    disk_format: diskFormat,
    container_format: "bare",
    visibility: "private",
  });
  if (r.status !== 201) fail(`creating ${name} in ${region}: HTTP ${r.status} ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}

interface ImageRecord {
  id: string;
  status: string;
  size?: number;
  disk_format?: string;
  os_hash_value?: string;
}

async function showImage(region: string, id: string): Promise<ImageRecord> {
  const r = await glanceCall(region, "GET", `/v2/images/${id}`);
  if (r.status !== 200) fail(`GET image ${id} in ${region}: HTTP ${r.status}`);
  return (await r.json()) as ImageRecord;
}

async function deleteImage(region: string, id: string): Promise<void> {
  // Glance (Zed) sometimes answers 500 to a delete that follows an import's end too closely (its task is still
  // writing the record): try again a few times.
  for (let attempt = 1; ; attempt++) {
    const r = await glanceCall(region, "DELETE", `/v2/images/${id}`);
    await r.body?.cancel();
    if (r.status === 204 || r.status === 404) return;
    if (attempt === 5) {
      console.error(`warning: deleting ${id} in ${region}: HTTP ${r.status}`);
      return;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

// ---------------------------------------------------------------------------------------------
// curl

let headerFile = "";
/** curl reads the token from a 0600 header file (`-H @file`): it never appears in a process list or a log. */
function curlArgs(t: Session, extra: string[]): string[] {
  writeFileSync(headerFile, `X-Auth-Token: ${t.token}\n`, { mode: 0o600 });
  return ["-sS", "--fail", "-H", `@${headerFile}`, ...extra];
}

function runCurl(args: string[]): void {
  const r = spawnSync("curl", args, { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) fail(`curl failed (${r.status}): ${r.stderr.toString().trim()}`);
}

// ---------------------------------------------------------------------------------------------
// measuring

/** Allocated bytes (st_blocks × 512) of every file under `dir`. */
async function allocatedUnder(dir: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const p = join(dir, name);
    try {
      const st = await lstat(p);
      if (st.isDirectory()) total += await allocatedUnder(p);
      else total += st.blocks * 512;
    } catch {
      // removed while walking
    }
  }
  return total;
}

/** Samples `allocatedUnder(dir)` every `ms` until stopped; resolves with the peak. */
function samplePeak(dir: string, ms = 100): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await allocatedUnder(dir));
      await new Promise((r) => setTimeout(r, ms));
    }
    peak = Math.max(peak, await allocatedUnder(dir));
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

async function sha512File(path: string): Promise<string> {
  const h = createHash("sha512");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

function fmt(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(0)} MiB`;
}

// ---------------------------------------------------------------------------------------------

/** The source file for `--source`, made (untimed, cached) from the test disks. */
function sourceFile(kind: Options["source"]): { path: string; diskFormat: string } {
  const raw = join(WORK, "debian.raw");
  if (!existsSync(raw)) fail("bench/work/debian.raw is missing: run `bash bench/make-test-disks.sh` first");
  if (kind === "raw") return { path: raw, diskFormat: "raw" };
  if (kind === "qcow2-zlib") {
    const p = join(WORK, "debian-zlib.qcow2");
    if (!existsSync(p)) fail(`${p} is missing: run \`bash bench/make-test-disks.sh\``);
    return { path: p, diskFormat: "qcow2" };
  }
  const p = join(WORK, "debian.qcow2");
  if (!existsSync(p)) {
    console.log("making bench/work/debian.qcow2 (qemu-img convert -O qcow2 debian.raw; untimed, cached)");
    const r = spawnSync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, `${p}.tmp`], { stdio: "inherit" });
    if (r.status !== 0) fail("qemu-img convert failed");
    spawnSync("mv", [`${p}.tmp`, p]);
  }
  return { path: p, diskFormat: "qcow2" };
}

interface CliResult {
  seconds: number;
  /** "phase detail: start–end s" for each phase, from the --json events' arrival times. */
  phases: string[];
  peakTemp: number;
  /** User + system CPU seconds and peak RSS (MiB) of the chromogenic process, from /usr/bin/time. */
  cpu?: { seconds: number; rssMiB: number };
  image?: { id: string; diskFormat?: string; sizeBytes?: number; hash?: { algorithm: string; value: string } };
  stderr: string;
  code: number | null;
}

async function runMigrate(sourceId: string, runDir: string): Promise<CliResult> {
  const stateDir = join(runDir, "state");
  const tmp = join(runDir, "tmp");
  const workDir = join(runDir, "work");
  for (const d of [stateDir, tmp, workDir]) mkdirSync(d, { recursive: true });
  const cloudsYaml = join(runDir, "clouds.yaml");
  const cloud = (region: string) =>
    [
      `    auth:`,
      `      auth_url: ${STACK.authUrl}`,
      `      username: ${STACK.username}`,
      `      password: ${STACK.password}`,
      `      project_name: ${STACK.project}`,
      `      user_domain_name: Default`,
      `      project_domain_name: Default`,
      `    region_name: ${region}`,
      `    interface: public`,
    ].join("\n");
  writeFileSync(
    cloudsYaml,
    `clouds:\n  bench-r1:\n${cloud(STACK.regionOne)}\n  bench-r2:\n${cloud(STACK.regionTwo)}\n`,
    { mode: 0o600 },
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OS_CLIENT_CONFIG_FILE: cloudsYaml,
    CHROMOGENIC_STATE_DIR: stateDir,
    TMPDIR: tmp,
  };
  for (const k of Object.keys(env)) if (k.startsWith("OS_") && k !== "OS_CLIENT_CONFIG_FILE") delete env[k];
  const args = [CLI, "migrate", "--from", "bench-r1", "--to", "bench-r2", "--image", sourceId];
  args.push("--name", `bench-migrate-${Date.now()}`, "--work-dir", workDir, "--json");
  const sampler = samplePeak(runDir);
  const t0 = process.hrtime.bigint();
  const timeFile = join(runDir, "time.out");
  const timed = existsSync("/usr/bin/time");
  const child = timed
    ? spawn("/usr/bin/time", ["-o", timeFile, "-f", "%U %S %M", NODE_BIN, ...args], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      })
    : spawn(NODE_BIN, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let pending = "";
  const phases: string[] = [];
  const started = new Map<string, number>();
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
    pending += c.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      try {
        const e = JSON.parse(line) as { event?: string; phase?: string; state?: string; detail?: string };
        if (e.event !== "phase" || !e.phase) continue;
        const at = seconds(t0);
        if (e.state === "start") started.set(e.phase, at);
        else
          phases.push(
            `${e.phase}${e.detail ? ` (${e.detail})` : ""}: ${(started.get(e.phase) ?? 0).toFixed(1)}–${at.toFixed(1)} s`,
          );
      } catch {
        // not JSON
      }
    }
  });
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const elapsed = seconds(t0);
  // clouds.yaml is a few bytes; it is in the folder sampled, and counted (as chromogenic's state would be).
  const peakTemp = await sampler.stop();
  let image: CliResult["image"];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const e = JSON.parse(line) as { event?: string; image?: CliResult["image"] };
      if (e.event === "done") image = e.image;
    } catch {
      // progress lines only
    }
  }
  let cpu: CliResult["cpu"];
  if (timed && existsSync(timeFile)) {
    const [user, sys, rssKiB] = readFileSync(timeFile, "utf8").trim().split(/\s+/).slice(-3).map(Number);
    if (user !== undefined && sys !== undefined && rssKiB !== undefined)
      cpu = { seconds: user + sys, rssMiB: rssKiB / 1024 };
    rmSync(timeFile, { force: true });
  }
  return { seconds: elapsed, phases, peakTemp, cpu, image, stderr, code };
}

/**
 * The server-side copy: an image created in RegionTwo and filled by glance-download from RegionOne (when
 * RegionTwo advertises it), timed from the create to `active`. Undefined when it is not offered.
 */
async function glanceDownloadCopy(
  sourceId: string,
  sourceSha: string,
  created: { region: string; id: string }[],
): Promise<number | undefined> {
  const info = (await (await glanceCall(STACK.regionTwo, "GET", "/v2/info/import")).json()) as {
    "import-methods"?: { value?: string[] };
  };
  if (!info["import-methods"]?.value?.includes("glance-download")) {
    console.log(`glance-download (reference): not offered by ${STACK.regionTwo}`);
    return undefined;
  }
  const t = process.hrtime.bigint();
  const id = await createImage(STACK.regionTwo, `bench-glance-download-${Date.now()}`, "raw");
  created.push({ region: STACK.regionTwo, id });
  const r = await glanceCall(STACK.regionTwo, "POST", `/v2/images/${id}/import`, {
    method: {
      name: "glance-download",
      glance_image_id: sourceId,
      glance_region: STACK.regionOne,
      glance_service_interface: "public",
    },
  });
  if (r.status !== 202) fail(`glance-download import: HTTP ${r.status} ${await r.text()}`);
  let image: ImageRecord;
  for (;;) {
    image = await showImage(STACK.regionTwo, id);
    if (image.status === "active") break;
    const tasks = (await (await glanceCall(STACK.regionTwo, "GET", `/v2/images/${id}/tasks`)).json()) as {
      tasks?: { status: string; message?: string }[];
    };
    const failedTask = tasks.tasks?.find((x) => x.status === "failure");
    if (failedTask) fail(`glance-download failed: ${failedTask.message}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  const elapsed = seconds(t);
  if (image.os_hash_value !== sourceSha) fail("the glance-download copy differs from the source");
  await deleteImage(STACK.regionTwo, id);
  return elapsed;
}

/** Floor (a): curl download into a file, then create + curl upload; the file is the temporary copy. */
async function floorSequential(
  sourceId: string,
  sourceSha: string,
  diskFormat: string,
  runDir: string,
  created: { region: string; id: string }[],
): Promise<{ download: number; upload: number; temporaryBytes: number }> {
  const floorFile = join(runDir, "floor.download");
  const s1 = await token();
  let t = process.hrtime.bigint();
  runCurl(curlArgs(s1, ["-o", floorFile, `${s1.glance[STACK.regionOne]}/v2/images/${sourceId}/file`]));
  const download = seconds(t);
  const temporaryBytes = allocated(floorFile);
  t = process.hrtime.bigint();
  const id = await createImage(STACK.regionTwo, `bench-floor-${Date.now()}`, diskFormat);
  created.push({ region: STACK.regionTwo, id });
  const s2 = await token();
  runCurl(
    curlArgs(s2, [
      "-X",
      "PUT",
      "-H",
      "Content-Type: application/octet-stream",
      "-T",
      floorFile,
      `${s2.glance[STACK.regionTwo]}/v2/images/${id}/file`,
    ]),
  );
  const image = await showImage(STACK.regionTwo, id);
  const upload = seconds(t);
  if (image.status !== "active" || image.os_hash_value !== sourceSha) {
    fail(`the floor's upload is ${image.status}, or its hash differs`);
  }
  rmSync(floorFile);
  await deleteImage(STACK.regionTwo, id);
  return { download, upload, temporaryBytes };
}

/** Floor (b), reference: `curl | curl`, no temporary file. */
async function floorPipe(
  sourceId: string,
  sourceSha: string,
  diskFormat: string,
  created: { region: string; id: string }[],
): Promise<number> {
  const s3 = await token();
  const t = process.hrtime.bigint();
  const id = await createImage(STACK.regionTwo, `bench-pipe-${Date.now()}`, diskFormat);
  created.push({ region: STACK.regionTwo, id });
  curlArgs(s3, []);
  const r = spawnSync(
    "bash",
    [
      "-o",
      "pipefail",
      "-c",
      'curl -sS --fail -H "@$H" "$SRC" | curl -sS --fail -X PUT -H "@$H" -H "Content-Type: application/octet-stream" -T - "$DST"',
    ],
    {
      env: {
        ...process.env,
        H: headerFile,
        SRC: `${s3.glance[STACK.regionOne]}/v2/images/${sourceId}/file`,
        DST: `${s3.glance[STACK.regionTwo]}/v2/images/${id}/file`,
      },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  if (r.status !== 0) fail(`curl | curl failed: ${r.stderr.toString().trim()}`);
  const piped = await showImage(STACK.regionTwo, id);
  const elapsed = seconds(t);
  if (piped.status !== "active" || piped.os_hash_value !== sourceSha) fail("the piped copy differs");
  await deleteImage(STACK.regionTwo, id);
  return elapsed;
}

interface MigrateRound {
  seconds: number;
  cpu?: { seconds: number; rssMiB: number };
  peakTemp: number;
  phases: string[];
  check: string;
  ok: boolean;
}

/** One `chromogenic migrate`, its result checked (untimed) and deleted. */
async function migrateOnce(
  sourceId: string,
  sourceSha: string,
  runDir: string,
  created: { region: string; id: string }[],
): Promise<MigrateRound> {
  const m = await runMigrate(sourceId, runDir);
  if (m.image) created.push({ region: STACK.regionTwo, id: m.image.id });
  if (m.code !== 0 || !m.image) {
    return { ...m, check: `FAILED (exit ${m.code}): ${m.stderr.trim()}`, ok: false };
  }
  const result = await showImage(STACK.regionTwo, m.image.id);
  let check: string;
  let ok = true;
  if (result.os_hash_value === sourceSha) check = "bit-identical to the source (sha512)";
  else {
    const copy = join(runDir, "migrated.check");
    const s4 = await token();
    runCurl(curlArgs(s4, ["-o", copy, `${s4.glance[STACK.regionTwo]}/v2/images/${m.image.id}/file`]));
    const cmp = spawnSync("qemu-img", [
      "compare",
      "-f",
      result.disk_format ?? "raw",
      "-F",
      "raw",
      copy,
      join(WORK, "debian.raw"),
    ]);
    rmSync(copy, { force: true });
    ok = cmp.status === 0;
    check = ok ? `converted to ${result.disk_format}; qemu-img compare: identical` : "qemu-img compare: DIFFERENT";
  }
  await deleteImage(STACK.regionTwo, m.image.id);
  for (const d of ["state", "work", "tmp"]) rmSync(join(runDir, d), { recursive: true, force: true });
  return { seconds: m.seconds, cpu: m.cpu, peakTemp: m.peakTemp, phases: m.phases, check, ok };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  for (const tool of ["curl", "qemu-img"]) {
    if (spawnSync(tool, ["--version"], { stdio: "ignore" }).status !== 0) fail(`${tool} is not installed`);
  }
  const src = sourceFile(opts.source);
  const srcSize = statSync(src.path).size;
  const srcAllocated = allocated(src.path);
  const cpu = cpus()[0]?.model ?? "?";
  console.log(
    `machine: ${cpus().length} × ${cpu}, ${(totalmem() / GiB).toFixed(1)} GiB RAM, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}; node ${process.versions.node}`,
  );
  console.log(
    `source: ${src.path.replace(ROOT, "")} (${src.diskFormat}, ${fmt(srcSize)} file, ${fmt(srcAllocated)} allocated, ` +
      `4 GiB virtual) → ${STACK.regionOne}, then ${STACK.regionOne} → ${STACK.regionTwo}; ${opts.repeat} round(s)`,
  );

  const created: { region: string; id: string }[] = [];
  const runDir = mkdtempSync(join(WORK, "migrate-run-"));
  headerFile = join(runDir, "curl-headers");
  let failed = false;
  try {
    // --- setup: the source image, uploaded once (untimed)
    const sourceId = await createImage(STACK.regionOne, `bench-source-${Date.now()}`, src.diskFormat);
    created.push({ region: STACK.regionOne, id: sourceId });
    const s0 = await token();
    const t0 = process.hrtime.bigint();
    runCurl(
      curlArgs(s0, [
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "-T",
        src.path,
        `${s0.glance[STACK.regionOne]}/v2/images/${sourceId}/file`,
      ]),
    );
    const source = await showImage(STACK.regionOne, sourceId);
    if (source.status !== "active") fail(`the source image is ${source.status} after its upload`);
    console.log(`setup: source image ${sourceId} uploaded in ${seconds(t0).toFixed(1)} s (untimed)`);
    const sourceSha = await sha512File(src.path);
    if (source.os_hash_value !== sourceSha) fail("Glance's sha512 of the source differs from the file's");

    // --- rounds: each measurement once per round, interleaved, so drift on a shared machine hits all alike
    const floors: number[] = [];
    const floorTemps: number[] = [];
    const pipes: number[] = [];
    const serverSides: number[] = [];
    const migrates: number[] = [];
    const migrateTemps: number[] = [];
    const migrateCpu: ({ seconds: number; rssMiB: number } | null)[] = [];
    for (let round = 1; round <= opts.repeat; round++) {
      const f = await floorSequential(sourceId, sourceSha, src.diskFormat, runDir, created);
      floors.push(f.download + f.upload);
      floorTemps.push(f.temporaryBytes);
      const parts = [
        `floor ${(f.download + f.upload).toFixed(1)} s (download ${f.download.toFixed(1)} + upload ` +
          `${f.upload.toFixed(1)}, temp ${fmt(f.temporaryBytes)})`,
      ];
      if (!opts.skipPipe) {
        const p = await floorPipe(sourceId, sourceSha, src.diskFormat, created);
        pipes.push(p);
        parts.push(`curl|curl ${p.toFixed(1)} s`);
      }
      if (!opts.skipServerSide) {
        const gd = await glanceDownloadCopy(sourceId, sourceSha, created);
        if (gd !== undefined) {
          serverSides.push(gd);
          parts.push(`glance-download ${gd.toFixed(1)} s`);
        }
      }
      let phases: string[] = [];
      if (!opts.skipMigrate) {
        const m = await migrateOnce(sourceId, sourceSha, runDir, created);
        if (!m.ok) failed = true;
        migrates.push(m.seconds);
        migrateTemps.push(m.peakTemp);
        migrateCpu.push(m.cpu ?? null);
        const cpu = m.cpu ? `, CPU ${m.cpu.seconds.toFixed(1)} s, RSS ${m.cpu.rssMiB.toFixed(0)} MiB` : "";
        parts.push(`chromogenic ${m.seconds.toFixed(1)} s (peak temp ${fmt(m.peakTemp)}${cpu}; ${m.check})`);
        phases = m.phases;
      }
      console.log(`round ${round}: ${parts.join("; ")}`);
      for (const p of phases) console.log(`    ${p}`);
    }

    const floor = median(floors);
    const row = (cells: string[]) => console.log(`| ${cells.join(" | ")} |`);
    console.log("");
    row([`measure (median of ${opts.repeat})`, "value", "target", "result"]);
    row(["---", "---", "---", "---"]);
    row([
      "floor: curl download, then curl upload",
      `${floor.toFixed(1)} s, temp ${fmt(Math.max(...floorTemps))}`,
      "",
      "",
    ]);
    if (pipes.length) row(["reference: curl \\| curl", `${median(pipes).toFixed(1)} s, temp 0`, "", ""]);
    if (serverSides.length) row(["reference: glance-download", `${median(serverSides).toFixed(1)} s, temp 0`, "", ""]);
    let ratio: number | undefined;
    if (migrates.length) {
      const mig = median(migrates);
      const peak = Math.max(...migrateTemps);
      ratio = mig / floor;
      row(["chromogenic migrate", `${mig.toFixed(1)} s`, "", ""]);
      row(["time ÷ floor", `${ratio.toFixed(3)}×`, "≤ 1.2×", ratio <= 1.2 ? "PASS" : "MISS"]);
      if (pipes.length) row(["time ÷ curl \\| curl", `${(mig / median(pipes)).toFixed(2)}×`, "", ""]);
      row([
        "peak temporary disk (max)",
        fmt(peak),
        `≤ ${fmt(srcAllocated)} (allocated data)`,
        peak <= srcAllocated ? "PASS" : "MISS",
      ]);
    }
    writeFileSync(
      join(WORK, "migrate-results.json"),
      JSON.stringify(
        {
          date: new Date().toISOString(),
          load: loadavg(),
          source: { kind: opts.source, bytes: srcSize, allocated: srcAllocated },
          samples: { floors, floorTemps, pipes, serverSides, migrates, migrateTemps, migrateCpu },
          medians: {
            floor,
            pipe: pipes.length ? median(pipes) : null,
            glanceDownload: serverSides.length ? median(serverSides) : null,
            migrate: migrates.length ? median(migrates) : null,
          },
          ratio: ratio ?? null,
        },
        null,
        2,
      ) + "\n",
    );
  } finally {
    if (!opts.keep) {
      for (const c of created) await deleteImage(c.region, c.id);
      rmSync(runDir, { recursive: true, force: true });
    } else {
      console.log(`kept: ${created.map((c) => `${c.region}:${c.id}`).join(" ")} and ${runDir}`);
    }
  }
  if (failed) process.exit(1);
}

await main();
