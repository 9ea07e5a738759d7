/**
 * The workflow commands on the local store (no cloud needed): a round trip through every data flow the local
 * provider allows, `clouds` listing without secrets, usage errors, and a failing job that removes its
 * temporary files unless --keep.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { qemuCheck, qemuCompare, scratch } from "../helpers/tools.js";
import { cli, jsonLines, writeCloudsYaml } from "./helpers/workflow-stack.js";
import { doneOf } from "../helpers/event-lines.js";

test("local store round trip: upload, migrate to another store as vmdk, export to qcow2 and raw: same disk", async (t) => {
  const dir = await scratch(t);
  const env = { clouds: join(dir, "none.yaml"), state: join(dir, "state") };
  const sample = join(dir, "sample.raw");
  await makeSampleImage(sample, 64 * 2 ** 20);
  const up = await cli(env, "image", "upload", "--cloud", `local:${dir}/s1`, sample, "sample");
  assert.equal(up.code, 0, up.stderr);
  const m = await cli(
    env,
    "migrate",
    "--from",
    `local:${dir}/s1`,
    "--to",
    `local:${dir}/s2`,
    "--image",
    "sample",
    "--format",
    "vmdk",
    "--json",
  );
  assert.equal(m.code, 0, m.stderr);
  const done = jsonLines(m.stdout).at(-1) as { plan: { targetAccess: string }; image: { id: string } };
  assert.equal(done.plan.targetAccess, "stream", "streamOptimized VMDK goes straight into the store");
  const e1 = await cli(
    env,
    "export",
    "--cloud",
    `local:${dir}/s2`,
    "--image",
    done.image.id,
    "--format",
    "qcow2",
    join(dir, "x.qcow2"),
  );
  assert.equal(e1.code, 0, e1.stderr);
  const e2 = await cli(
    env,
    "export",
    "--cloud",
    `local:${dir}/s2`,
    "--image",
    "sample",
    "--format",
    "raw",
    join(dir, "x.raw"),
  );
  assert.equal(e2.code, 0, e2.stderr);
  assert.equal((await qemuCheck(join(dir, "x.qcow2"))).code, 0);
  assert.equal((await qemuCompare(sample, join(dir, "x.qcow2"))).code, 0);
  assert.equal((await qemuCompare(sample, join(dir, "x.raw"))).code, 0);
  const list = await cli(env, "image", "list", "--cloud", `local:${dir}/s2`);
  assert.match(list.stdout, /sample {2}vmdk/);
  const jobs = await cli(env, "jobs", "--json");
  assert.deepEqual(
    (doneOf(jobs.stdout, "jobs").jobs as { status: string }[]).map((j) => j.status),
    ["done", "done", "done"],
  );
});

test("clouds lists the local store, clouds.yaml entries and OS_* without any secret", async (t) => {
  const dir = await scratch(t);
  const clouds = await writeCloudsYaml(dir, { mine: { user: "user-a", region: "RegionTwo" } });
  const r = await cli({ clouds, state: join(dir, "state") }, "clouds", "--json");
  assert.equal(r.code, 0, r.stderr);
  const list = doneOf(r.stdout, "clouds").clouds as { name: string; kind: string; region?: string; user?: string }[];
  assert.deepEqual(
    list.map((c) => [c.name, c.kind]),
    [
      ["local", "local"],
      ["mine", "openstack"],
    ],
  );
  assert.equal(list[1]!.region, "RegionTwo");
  assert.equal(list[1]!.user, "user-a");
  assert.ok(!r.stdout.includes("pass-a"), "no password printed");
  assert.equal((list[0] as { directory?: string }).directory, join(dir, "state", "images"));
});

test("usage errors are exit 2; a store without instances is a clear error", async (t) => {
  const dir = await scratch(t);
  const env = { clouds: join(dir, "none.yaml"), state: join(dir, "state") };
  const noSource = await cli(env, "migrate", "--from", "local", "--to", "local");
  assert.equal(noSource.code, 2);
  assert.match(noSource.stderr, /exactly one of --image and --instance/);
  const noFormat = await cli(env, "export", "--cloud", "local", "--image", "x", join(dir, "o"));
  assert.equal(noFormat.code, 2);
  assert.match(noFormat.stderr, /needs --format ova\|qcow2\|raw\|vmdk\|vhd\|vdi/);
  const snap = await cli(
    env,
    "export",
    "--cloud",
    `local:${dir}/s`,
    "--instance",
    "vm1",
    "--format",
    "qcow2",
    join(dir, "o"),
  );
  assert.equal(snap.code, 1);
  assert.match(snap.stderr, /has no instances: cannot snapshot "vm1"/);
  const badProp = await cli(
    env,
    "migrate",
    "--from",
    "local",
    "--to",
    "local",
    "--image",
    "x",
    "--property",
    "novalue",
  );
  assert.equal(badProp.code, 2);
});

test("a failing job removes its temporary files (kept with --keep), leaves no output, and says which job failed", async (t) => {
  const dir = await scratch(t);
  const env = { clouds: join(dir, "none.yaml"), state: join(dir, "state") };
  const data = Buffer.alloc(3 * 2 ** 20, 7);
  await writeFile(join(dir, "in.raw"), data);
  const up = await cli(env, "image", "upload", "--cloud", `local:${dir}/s`, join(dir, "in.raw"), "img");
  const id = up.stdout.trim();
  data[100] = 8; // the stored bytes no longer match the recorded SHA-256
  await writeFile(join(dir, "s", `${id}.img`), data);
  const out = join(dir, "out", "x.raw");
  const r = await cli(env, "export", "--cloud", `local:${dir}/s`, "--image", id, "--format", "raw", out);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /job export-\S+: .*no longer matches its recorded SHA-256/);
  assert.deepEqual(await readdir(join(dir, "out")), [], "no output and no partial file");
  const kept = await cli(env, "export", "--cloud", `local:${dir}/s`, "--image", id, "--format", "raw", "--keep", out);
  assert.equal(kept.code, 1);
  assert.match(kept.stderr, /leftovers kept: --keep/);
  const left = await readdir(join(dir, "out"));
  assert.equal(left.length, 1);
  assert.match(left[0]!, /^\.x\.raw\.export-.*\.partial$/);
  const jobs = doneOf((await cli(env, "jobs", "--json")).stdout, "jobs").jobs as {
    status: string;
    errorCode: string;
  }[];
  assert.deepEqual(
    jobs.map((j) => [j.status, j.errorCode]),
    [
      ["failed", "ESTORE"],
      ["failed", "ESTORE"],
    ],
  );
});

test("migrate --image ID names the new image after the source image, not its id", async (t) => {
  const dir = await scratch(t);
  const env = { clouds: join(dir, "none.yaml"), state: join(dir, "state") };
  const sample = join(dir, "sample.raw");
  await makeSampleImage(sample, 8 * 2 ** 20);
  const up = await cli(env, "image", "upload", "--json", "--cloud", `local:${dir}/s1`, sample, "Debian 12 base");
  assert.equal(up.code, 0, up.stderr);
  const id = doneOf(up.stdout, "image upload").id as string;
  const m = await cli(env, "migrate", "--from", `local:${dir}/s1`, "--to", `local:${dir}/s2`, "--image", id, "--json");
  assert.equal(m.code, 0, m.stderr);
  const done = jsonLines(m.stdout).at(-1) as { image: { id: string; name: string } };
  assert.equal(done.image.name, "Debian 12 base");
  assert.notEqual(done.image.id, id);
});
