/**
 * An export from a Eucalyptus-style cloud killed with SIGKILL while its bundle's parts download, then resumed:
 * the interrupted run kept each part it had verified in the job's folder, so the resumed run fetches from S3
 * only the parts it had not got (and one kept part damaged in between, which it notices and fetches again);
 * the output equals the source and the kept parts are gone once the job is done. The GETs are counted by a
 * forwarding front before the real Swift (s3api); the EC2 endpoint is the documented stand-in server
 * (test/helpers/eucalyptus-admin-server.ts) with its image registry.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { open, readdir, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { listObjects } from "../../src/providers/ec2/s3-listing.js";
import { startEucalyptusAdminServer, type AdminServer } from "../helpers/eucalyptus-admin-server.js";
import { startCountingFront, type CountingFront } from "../helpers/counting-http-front.js";
import { requireSwift, swiftConnection, SWIFT_USERS, testBucket, SWIFT_S3_URL } from "../helpers/swift-s3.js";
import { makeBundleKeys } from "../helpers/euca2ools.js";
import { manifestsInSwift, swiftEucarc } from "../helpers/eucalyptus-swift-cloud.js";
import { doneOf } from "../helpers/event-lines.js";
import { interruptWhen } from "../helpers/interrupt-run.js";
import { pattern, qemuCompare, runCli, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;
const ACCOUNT = "123456789012";
/** Incompressible, so the bundle has one 10 MiB part per 10 MiB of disk (and one more for tar and gzip). */
const DISK_SIZE = 160 * MiB;
const PART = /\.part\.\d+$/;

let server: AdminServer;
let front: CountingFront;
const s3 = swiftConnection("tester");

before(async () => {
  await requireSwift();
  front = await startCountingFront(SWIFT_S3_URL);
  server = await startEucalyptusAdminServer({
    // The cloud's key is Swift's tempauth user, so the one eucarc key pair signs EC2 and S3 alike.
    keys: [{ ...SWIFT_USERS.tester, account: ACCOUNT, admin: false }],
    images: manifestsInSwift(s3),
  });
});

after(async () => {
  await server?.close();
  await front?.close();
  s3.destroy();
});

test("SIGKILL while the bundle's parts download, then resume: kept parts not fetched again, the output whole", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const bucket = testBucket(t, s3);
  const state = join(dir, "state");
  const env = swiftEucarc({ serverUrl: server.url, account: ACCOUNT, keys, bucket, state, s3Url: front.url });
  const disk = join(dir, "disk.raw");
  await writeFile(disk, pattern(DISK_SIZE, 17));
  const up = await runCli(["image", "upload", "--json", "--cloud", "env-euca", disk, "resumable"], env);
  assert.equal(up.code, 0, up.stderr);
  const image = (doneOf(up.stdout, "image upload") as unknown as { id: string }).id;

  const stored: string[] = [];
  for await (const o of listObjects(s3, bucket, "")) if (PART.test(o.key)) stored.push(o.key);
  assert.ok(stored.length >= 16, `${stored.length} parts`);

  const out = join(dir, "out.raw");
  const partsOf = async (folder: string) => (await readdir(folder).catch(() => [])).filter((n) => PART.test(n));
  let cache = "";
  const killed = await interruptWhen(
    dir,
    env,
    ["export", "--cloud", "env-euca", "--image", image, "--format", "raw", out],
    "SIGKILL",
    async () => {
      const jobs = await readdir(join(state, "jobs")).catch(() => []);
      if (jobs.length !== 1) return false;
      cache = join(state, "jobs", jobs[0]!, "source-parts");
      return (await partsOf(cache)).length >= 3;
    },
  );
  assert.ok(killed, "the export ended before it was killed");
  assert.equal(killed.signal, "SIGKILL", killed.stderr);
  const kept = await partsOf(cache);
  assert.ok(kept.length >= 3 && kept.length < stored.length, `kept ${kept.length} of ${stored.length} parts`);
  assert.equal((await stat(cache)).mode & 0o077, 0, "the kept parts' folder is its owner's only");
  // A kept part damaged between the runs: the resume must notice (its SHA-1) and fetch it again.
  const damaged = kept[1]!;
  const file = await open(join(cache, damaged), "r+");
  // The byte inverted, not overwritten with a constant: a part whose byte there already was that constant (1 in
  // 256) stayed intact and the test failed that often.
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, 4096);
  byte[0] = ~byte[0]! & 0xff;
  await file.write(byte, 0, 1, 4096);
  await file.close();

  const job = (await readdir(join(state, "jobs")))[0]!;
  const before = front.requests.length;
  const resumed = await runCli(["resume", "--json", job], env);
  assert.equal(resumed.code, 0, resumed.stderr);
  const plan = (doneOf(resumed.stdout, "resume") as unknown as { plan: { notes: string[]; temporaryBytes: number } })
    .plan;
  assert.ok(
    plan.notes.some((n) => /verified parts kept in the work directory/.test(n)),
    plan.notes.join("; "),
  );
  assert.ok(plan.temporaryBytes > DISK_SIZE, "the preflight counted the bundle's compressed size");
  // GetObject's path is /BUCKET/KEY?x-id=GetObject: the part's name is the key.
  const gets = front.requests
    .slice(before)
    .filter((r) => r.method === "GET")
    .map((r) => basename(new URL(r.path, front.url).pathname))
    .filter((name) => PART.test(name));
  for (const name of kept) {
    const times = gets.filter((g) => g === name).length;
    assert.equal(times, name === damaged ? 1 : 0, `${name} fetched ${times} time(s) by the resumed run`);
  }
  assert.deepEqual(
    [...new Set([...gets, ...kept])].sort(),
    stored.sort(),
    `every other part fetched: ${gets.join(" ")}`,
  );
  assert.equal(gets.length, new Set(gets).size, `no part fetched twice: ${gets.join(" ")}`);
  assert.equal((await qemuCompare(disk, out)).code, 0, "the export differs from the source");
  assert.deepEqual(await readdir(cache).catch(() => []), [], "the kept parts are removed once the job is done");
});

test("--no-part-cache: the export keeps no part while it downloads", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const bucket = testBucket(t, s3);
  const state = join(dir, "state");
  const env = swiftEucarc({ serverUrl: server.url, account: ACCOUNT, keys, bucket, state });
  const disk = join(dir, "disk.raw");
  await writeFile(disk, pattern(40 * MiB, 23));
  const up = await runCli(["image", "upload", "--json", "--cloud", "env-euca", disk, "uncached"], env);
  assert.equal(up.code, 0, up.stderr);
  const image = (doneOf(up.stdout, "image upload") as unknown as { id: string }).id;
  const out = join(dir, "out.raw");
  let seen = false;
  const killed = await interruptWhen(
    dir,
    env,
    ["export", "--cloud", "env-euca", "--image", image, "--format", "raw", "--no-part-cache", out],
    "SIGKILL",
    async () => {
      const jobs = await readdir(join(state, "jobs")).catch(() => []);
      if (jobs.length !== 1) return false;
      // Stopped once the download has written its first bytes.
      const partial = (await readdir(dir)).find((n) => n.startsWith(".out.raw.") && n.endsWith(".partial"));
      seen = !!partial && (await stat(join(dir, partial))).size > 0;
      return seen;
    },
  );
  assert.ok(killed, "the export ended before it was killed");
  const jobs = await readdir(join(state, "jobs"));
  assert.deepEqual(await readdir(join(state, "jobs", jobs[0]!, "source-parts")).catch(() => []), []);
});
