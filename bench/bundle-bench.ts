/**
 * Bundle benchmark: `chromogenic bundle` vs `euca-bundle-image` and `chromogenic unbundle` vs `euca-unbundle`
 * (euca2ools 3.4, Python 3, from ../shared/third-party) on the same 4 GiB Debian disk, in the same run.
 *
 *   bash bench/make-test-disks.sh && npm run bench:bundle [-- --repeat 3 --keep]
 *
 * Keys are made once with openssl (untimed). Then, `--repeat` times (default 1, or $BENCH_REPEAT), interleaved:
 *   - bundle: ours and euca-bundle-image of bench/work/debian.raw, same keys, same fixed AES key and IV;
 *   - unbundle: ours and euca-unbundle of euca-bundle-image's bundle (the same input for both), and ours of ours.
 * Each tool runs under /usr/bin/time for its peak RSS. Checked, untimed: both manifests carry the same tar
 * digest (our tar stream is euca2ools' byte for byte), and every unbundled image equals debian.raw (cmp).
 *
 * With Swift's s3api answering on 127.0.0.1:8080 (test/infra/swift/start.sh), also timed beside them: ours bundling
 * straight into a bucket (parts uploaded as they are made) and unbundling straight from it.
 *
 * Targets: each of ours ≥ 3× faster than euca2ools' in the same run; our peak RSS under 256 MiB. Exit 0 when all
 * tools ran and the outputs matched (a missed target is printed, not fatal), 1 otherwise.
 */
import { DeleteBucketCommand } from "@aws-sdk/client-s3";
import { S3Connection } from "../src/providers/ec2/s3-connection.js";
import { listObjects } from "../src/providers/ec2/s3-listing.js";
import { deleteObject } from "../src/providers/ec2/s3-objects.js";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchFail, CLI, machineLine, median, NODE_BIN, WORK, repeatKeepOptions } from "./bench-context.js";
import { euca2oolsHome, makeBundleKeys } from "../test/helpers/euca2ools.js";

const DIR = join(WORK, "bundle");
const RAW = join(WORK, "debian.raw");
const SPEED_TARGET = 3;
const RSS_TARGET_MIB = 256;
const KEY = "0123456789abcdef0123456789abcdef";
const IV = "fedcba9876543210fedcba9876543210";

function fail(message: string): never {
  return benchFail("bundle-bench", message);
}

interface Timed {
  readonly seconds: number;
  readonly rssMiB: number;
}

/** Runs a command under GNU time; its wall time and peak RSS, or the bench fails with its output. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Timed {
  const rssFile = join(DIR, "rss");
  const started = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, cmd, ...args], {
    encoding: "utf8",
    env,
    maxBuffer: 64 * 2 ** 20,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.error) fail(`${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr || r.stdout}`);
  return { seconds, rssMiB: Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) / 1024 };
}

function sameFile(a: string, b: string): void {
  const r = spawnSync("cmp", [a, b], { encoding: "utf8" });
  if (r.status !== 0) fail(`${a} differs from ${b}: ${r.stdout}${r.stderr}`);
}

function tarDigest(manifest: string): string {
  const m = /<digest algorithm="SHA1">([0-9a-f]{40})<\/digest><size>/.exec(readFileSync(manifest, "latin1"));
  return m?.[1] ?? fail(`${manifest}: no image digest`);
}

async function main(): Promise<number> {
  const opts = repeatKeepOptions("bundle-bench", process.argv.slice(2));
  if (!existsSync(RAW)) fail(`${RAW} is missing: run \`bash bench/make-test-disks.sh\` first`);
  if (!existsSync("/usr/bin/time")) fail("/usr/bin/time is missing: apt-get install time");
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  console.log(machineLine(opts.repeat));
  const keys = await makeBundleKeys(DIR);
  const home = await euca2oolsHome();
  const eucaEnv = { ...process.env, PYTHONPATH: `${join(home, "euca2ools")}:${join(home, "requestbuilder")}` };
  const euca = (command: string, args: string[]) =>
    timed("/usr/bin/python3", ["-W", "ignore", join(home, "euca2ools", "bin", command), ...args], eucaEnv);
  const bundleArgs = (out: string) => [
    "-i", RAW, "-r", "x86_64", "-k", keys.userKey, "-c", keys.userCert, "--ec2cert", keys.cloudCert,
    "-u", "123456789012", "-d", out, "--enc-key", KEY, "--enc-iv", IV,
  ]; // prettier-ignore
  spawnSync("sh", ["-c", `cat '${RAW}' > /dev/null`]); // a warm page cache for both tools

  const results = { bundleOurs: [] as Timed[], bundleEuca: [] as Timed[], unbundleOurs: [] as Timed[] };
  const more = { unbundleEuca: [] as Timed[], unbundleOursOwn: [] as Timed[] };
  for (let i = 0; i < opts.repeat; i++) {
    const ours = join(DIR, `ours-${i}`);
    const theirs = join(DIR, `euca-${i}`);
    for (const d of [ours, theirs]) mkdirSync(d, { recursive: true });
    spawnSync("sync");
    const bo = timed(NODE_BIN, [CLI, "bundle", ...bundleArgs(ours), "-q"]);
    spawnSync("sync");
    const be = euca("euca-bundle-image", bundleArgs(theirs));
    if (tarDigest(join(ours, "debian.raw.manifest.xml")) !== tarDigest(join(theirs, "debian.raw.manifest.xml"))) {
      fail("the two bundles' tar digests differ");
    }
    const outs = ["uo", "ue", "uoo"].map((n) => join(DIR, `${n}-${i}`));
    for (const d of outs) mkdirSync(d, { recursive: true });
    const eucaManifest = join(theirs, "debian.raw.manifest.xml");
    spawnSync("sync");
    const uo = timed(NODE_BIN, [
      CLI,
      "unbundle",
      "-m",
      eucaManifest,
      "-s",
      theirs,
      "-d",
      outs[0]!,
      "-k",
      keys.userKey,
      "-q",
    ]);
    spawnSync("sync");
    const ue = euca("euca-unbundle", ["-m", eucaManifest, "-s", theirs, "-d", outs[1]!, "-k", keys.userKey]);
    spawnSync("sync");
    const uoo = timed(NODE_BIN, [
      CLI, "unbundle", "-m", join(ours, "debian.raw.manifest.xml"), "-s", ours, "-d", outs[2]!, "-k", keys.userKey, "-q",
    ]); // prettier-ignore
    for (const d of outs) sameFile(join(d, "debian.raw"), RAW);
    results.bundleOurs.push(bo);
    results.bundleEuca.push(be);
    results.unbundleOurs.push(uo);
    more.unbundleEuca.push(ue);
    more.unbundleOursOwn.push(uoo);
    console.log(
      `run ${i + 1}: bundle ours ${bo.seconds.toFixed(2)} s / euca ${be.seconds.toFixed(2)} s; unbundle (euca's ` +
        `bundle) ours ${uo.seconds.toFixed(2)} s / euca ${ue.seconds.toFixed(2)} s; ours of ours ${uoo.seconds.toFixed(2)} s`,
    );
    if (!opts.keep) for (const d of [ours, theirs, ...outs]) rmSync(d, { recursive: true, force: true });
  }

  const network = await throughSwift(keys, opts.repeat);

  const wall = (xs: Timed[]) => median(xs.map((x) => x.seconds));
  const rss = (xs: Timed[]) => Math.max(...xs.map((x) => x.rssMiB));
  const bundleRatio = wall(results.bundleEuca) / wall(results.bundleOurs);
  const unbundleRatio = wall(more.unbundleEuca) / wall(results.unbundleOurs);
  const ourRss = Math.max(rss(results.bundleOurs), rss(results.unbundleOurs), rss(more.unbundleOursOwn));
  const row = (what: string, xs: Timed[]) => `| ${what} | ${wall(xs).toFixed(2)} | ${rss(xs).toFixed(0)} |`;
  console.log(
    [
      "",
      "| 4 GiB Debian disk (debian.raw) | wall (s, median) | peak RSS (MiB) |",
      "| --- | ---: | ---: |",
      row("chromogenic bundle", results.bundleOurs),
      row("euca-bundle-image", results.bundleEuca),
      row("chromogenic unbundle (euca2ools' bundle)", results.unbundleOurs),
      row("euca-unbundle (euca2ools' bundle)", more.unbundleEuca),
      row("chromogenic unbundle (its own bundle)", more.unbundleOursOwn),
      ...(network
        ? [
            row("chromogenic bundle + upload to Swift (--bucket)", network.up),
            row("chromogenic download from Swift + unbundle (--bucket)", network.down),
          ]
        : []),
      "",
      `bundle: ${bundleRatio.toFixed(1)}× faster; unbundle: ${unbundleRatio.toFixed(1)}× faster; outputs identical`,
      `target: bundle ≥ ${SPEED_TARGET}× ............ ${bundleRatio >= SPEED_TARGET ? "PASS" : "MISS"}`,
      `target: unbundle ≥ ${SPEED_TARGET}× .......... ${unbundleRatio >= SPEED_TARGET ? "PASS" : "MISS"}`,
      `target: RSS < ${RSS_TARGET_MIB} MiB ........... ${ourRss < RSS_TARGET_MIB ? "PASS" : "MISS"} (${ourRss.toFixed(0)} MiB)`,
    ].join("\n"),
  );
  writeFileSync(join(WORK, "bundle-results.json"), JSON.stringify({ ...results, ...more }, null, 2) + "\n");
  return 0;
}

/** Swift's s3api with tempauth, as `bash test/infra/swift/start.sh` starts it. */
const SWIFT = "http://127.0.0.1:8080";

/**
 * Bundle straight into a bucket of the local Swift and unbundle straight from it (`--bucket`: parts uploaded while
 * later ones are made, fetched a few ahead), beside the local runs; skipped, with a line saying so, when Swift
 * does not answer. The output is compared with the disk.
 */
async function throughSwift(
  keys: { userKey: string; userCert: string; cloudCert: string },
  repeat: number,
): Promise<{ up: Timed[]; down: Timed[] } | undefined> {
  const answers = await fetch(`${SWIFT}/healthcheck`).then(
    (r) => r.ok,
    () => false,
  );
  if (!answers) {
    console.log(`Swift does not answer at ${SWIFT} (bash test/infra/swift/start.sh): upload and download not timed`);
    return undefined;
  }
  const env = {
    ...process.env,
    EC2_URL: SWIFT,
    S3_URL: SWIFT,
    EC2_ACCESS_KEY: "test:tester",
    EC2_SECRET_KEY: "testing",
    AWS_AUTH_REGION: "us-east-1",
  };
  const up: Timed[] = [];
  const down: Timed[] = [];
  for (let i = 0; i < repeat; i++) {
    const bucket = `bench-${process.pid}-${i}`;
    const out = join(DIR, `swift-${i}`);
    mkdirSync(out, { recursive: true });
    up.push(
      timed(NODE_BIN, [
        CLI, "bundle", "-i", RAW, "-r", "x86_64", "-k", keys.userKey, "-c", keys.userCert, "--ec2cert", keys.cloudCert,
        "-u", "123456789012", "--bucket", bucket, "--cloud", "env-euca", "-q",
      ], env), // prettier-ignore
    );
    down.push(
      timed(NODE_BIN, [
        CLI, "unbundle", "-m", "debian.raw.manifest.xml", "--bucket", bucket, "--cloud", "env-euca", "-d", out,
        "-k", keys.userKey, "-q",
      ], env), // prettier-ignore
    );
    sameFile(join(out, "debian.raw"), RAW);
    rmSync(out, { recursive: true, force: true });
    await emptyBucket(env, bucket);
    console.log(
      `swift run ${i + 1}: bundle + upload ${up.at(-1)!.seconds.toFixed(2)} s; ` +
        `download + unbundle ${down.at(-1)!.seconds.toFixed(2)} s`,
    );
  }
  return { up, down };
}

/** Removes the bench's bundle from Swift (its parts hold as much as the disk's data). */
async function emptyBucket(env: Record<string, string | undefined>, bucket: string): Promise<void> {
  const s3 = new S3Connection({
    cloud: "bench",
    endpoint: env.S3_URL!,
    region: env.AWS_AUTH_REGION!,
    accessKeyId: env.EC2_ACCESS_KEY!,
    secretAccessKey: env.EC2_SECRET_KEY!,
  });
  for await (const o of listObjects(s3, bucket, "")) await deleteObject(s3, bucket, o.key);
  await s3.client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

process.exit(await main());
