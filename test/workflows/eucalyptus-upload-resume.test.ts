/**
 * A migration into a Eucalyptus-style cloud killed with SIGKILL while its bundle's parts are being uploaded, then
 * resumed: the resumed run reuses the interrupted one's prefix and AES key (kept in the job's state), so the parts
 * already in the bucket are the same bytes and are not sent again; the image registered at the end reads back
 * identical to the source. Against the real EC2 (OpenStack's ec2-api, whose RegisterImage decrypts the bundle
 * itself) and S3 (Swift) of the test stack.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { listObjects } from "../../src/providers/ec2/s3-listing.js";
import { eucarcEnv, requireEc2Api, s3Connection, type Ec2ApiStack } from "../helpers/ec2-api-stack.js";
import { makeBundleKeys } from "../helpers/euca2ools.js";
import { doneOf } from "../helpers/event-lines.js";
import { pattern, qemuCompare, runCli, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;
let stack: Ec2ApiStack;

before(async () => {
  stack = await requireEc2Api();
});

test("SIGKILL while the bundle's parts upload, then resume: stored parts not sent again, the image whole", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const bucket = `resume-${randomUUID().slice(0, 8)}`;
  const env = { ...eucarcEnv(stack, join(dir, "state"), keys), CHROMOGENIC_BUNDLE_BUCKET: bucket };
  // Incompressible data, so the bundle has one 10 MiB part per 10 MiB of disk.
  const disk = join(dir, "disk.raw");
  await writeFile(disk, pattern(240 * MiB, 41));
  const store = join(dir, "store");
  await mkdir(store);
  const up = await runCli(["image", "upload", "--json", "--cloud", `local:${store}`, disk, "resumable"], env);
  assert.equal(up.code, 0, up.stderr);
  const source = (doneOf(up.stdout, "image upload") as unknown as { id: string }).id;

  const args = ["migrate", "--json", "--from", `local:${store}`, "--to", "env-euca", "--image", source];
  const child = spawn(process.execPath, ["bin/chromogenic.js", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  const s3 = s3Connection(stack);
  const parts = async (prefix: string) => {
    const found = new Map<string, string>();
    try {
      for await (const o of listObjects(s3, bucket, `${prefix}.part.`)) {
        const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: o.key }));
        found.set(o.key, head.LastModified!.toISOString());
      }
    } catch (e) {
      // The bucket is made with the first part.
      if (!/NoSuchBucket/.test((e as Error).message)) throw e;
    }
    return found;
  };
  // The job saves the bundle's prefix before the first part; wait for a few parts under it, then kill.
  let job = "";
  let prefix = "";
  let stored = new Map<string, string>();
  const deadline = Date.now() + 120_000;
  while (stored.size < 4) {
    assert.ok(Date.now() < deadline, `no parts uploaded in time: ${stderr}`);
    assert.equal(child.exitCode, null, `the migration ended before it was killed: ${stderr}`);
    await sleep(200);
    const jobs = await readdir(join(dir, "state", "jobs")).catch(() => []);
    job = jobs[0] ?? "";
    if (!job) continue;
    const state = JSON.parse(await readFile(join(dir, "state", "jobs", job, "state.json"), "utf8").catch(() => "{}"));
    prefix = state.uploadResume?.prefix ?? "";
    if (prefix) stored = await parts(prefix);
  }
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");
  assert.ok(stored.size < 24, `the upload had ended before the kill (${stored.size} parts)`);

  const resumed = await runCli(["resume", "--json", job], env);
  assert.equal(resumed.code, 0, resumed.stderr);
  const done = doneOf(resumed.stdout, "resume") as unknown as { image: { id: string } };
  t.after(() => runCli(["image", "delete", "--cloud", "env-euca", done.image.id], env).then(() => undefined));
  const after = await parts(prefix);
  assert.ok(after.size >= 24, `240 MiB of incompressible data in ${after.size} parts`);
  for (const [key, modified] of stored) {
    assert.equal(after.get(key), modified, `${key} was stored again by the resumed run`);
  }
  const back = join(dir, "back.raw");
  const e = await runCli(["export", "--cloud", "env-euca", "--image", done.image.id, "--format", "raw", back], env);
  assert.equal(e.code, 0, e.stderr);
  assert.equal((await qemuCompare(disk, back)).code, 0, "the image read back differs from the source");
});
