/**
 * A qcow2 image in Glance (written by qemu-img, compressed, as cloud images are) converted where it is stored,
 * against the real test stack: the Range reader feeding the qcow2 driver makes few, large requests (its
 * read-ahead follows qcow2's L2-table-then-clusters pattern), and `export` to raw, VMDK and OVA plans a Range
 * read with no temporary download — no download phase, nothing written in the job folder — while the outputs
 * (an OVA's disk member) compare identical with qemu-img. The preflight sizes a file output by the qcow2's
 * guest data, not its compressed size: an export into a tmpfs that holds the latter but not the former is
 * refused before anything is converted. Never stops or cleans the stack; deletes only the images it uploaded.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { OpenStackProvider } from "../../src/providers/openstack/openstack-provider.js";
import type { HttpInput } from "../../src/formats/inputs/http-input.js";
import { openImage } from "../../src/formats/engine/open-image.js";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { convertImage } from "../../src/formats/engine/convert.js";
import { TemporaryOutputFile } from "../../src/formats/io/replacing-output.js";
import { getDriver } from "../../src/formats/registry.js";
import { requireStack, stackCloud } from "../helpers/openstack-stack.js";
import { makeRaw, pattern, qemuCheck, qemuCompare, qemuImg, runOk } from "../helpers/tools.js";
import { extractAll } from "../helpers/ova-tools.js";
import { cli, jsonLines, writeCloudsYaml } from "./helpers/workflow-stack.js";

const MiB = 2 ** 20;
/** The HTTP input's block size (formats/inputs/http-input.ts), and how many blocks it reads ahead. */
const BLOCK = 4 * MiB;
const READ_AHEAD = 2;
const tag = randomUUID().slice(0, 8);
const provider = new OpenStackProvider(stackCloud("user-a", "RegionOne"));
let dir: string;
let env: { clouds: string; state: string };
let raw: string;
/** The compressed qcow2 file uploaded as `imageId`: the Glance image's bytes. */
let glanceQcow2: string;
let imageId: string | undefined;
let imageBytes: number;
const extraImages: string[] = [];

before(async () => {
  await requireStack();
  dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-q2ip-"));
  env = {
    state: join(dir, "state"),
    clouds: await writeCloudsYaml(dir, { a1: { user: "user-a", region: "RegionOne" } }),
  };
  raw = join(dir, "sample.raw");
  await makeSampleImage(raw);
  // qemu-img's own compressed qcow2, the usual shape of a cloud image in Glance.
  glanceQcow2 = join(dir, "sample.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", "-c", raw, glanceQcow2);
  imageBytes = (await stat(glanceQcow2)).size;
  const image = await provider.uploadImage(
    { name: `chromo-q2ip-${tag}`, diskFormat: "qcow2", sizeBytes: imageBytes },
    createReadStream(glanceQcow2, { highWaterMark: MiB }),
  );
  imageId = image.id;
});

after(async () => {
  if (imageId) await provider.deleteImage(imageId).catch(() => undefined);
  for (const id of extraImages) await provider.deleteImage(id).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Uploads `file` as a qcow2 image named for this run; deleted after the tests. */
async function upload(file: string, suffix: string): Promise<string> {
  const image = await provider.uploadImage(
    { name: `chromo-q2ip-${suffix}-${tag}`, diskFormat: "qcow2", sizeBytes: (await stat(file)).size },
    createReadStream(file, { highWaterMark: MiB }),
  );
  extraImages.push(image.id);
  return image.id;
}

/** Converts Glance image `id` to a raw file through the Range reader and the qcow2 driver; returns the reader's cost. */
async function convertInPlace(id: string, out: string): Promise<{ requests: number; bytesFetched: number }> {
  const reader = (await provider.openImageInput(id)) as HttpInput;
  assert.ok(reader.stats, "the Glance reader reports its request count");
  const { source } = await openImage(reader, { format: "qcow2" });
  try {
    assert.equal(source.format, "qcow2");
    const output = await TemporaryOutputFile.create(out);
    try {
      const target = await getDriver("raw").create!(output, source.virtualSize, {});
      await convertImage(source, target);
      await output.commit();
    } finally {
      await output.discard();
    }
  } finally {
    await source.close();
  }
  return { ...reader.stats };
}

test("qcow2 over Glance Range reads: converts identical to the source with about one request per 8 MiB block", async (t) => {
  // 48 MiB of incompressible data spread over the disk, so the image spans several blocks; 64 KiB clusters
  // (one L2 table for the disk) and 512-byte clusters (an L2 table every 32 KiB of data, interleaved with it).
  const spread = join(dir, "spread.raw");
  const regions = [0, 40, 90, 150, 200, 250].map((m, i) => ({ offset: m * MiB, data: pattern(8 * MiB, i + 1) }));
  await makeRaw(spread, 256 * MiB, regions);
  for (const clusterSize of ["64k", "512"]) {
    const qcow2 = join(dir, `spread-${clusterSize}.qcow2`);
    await qemuImg("convert", "-f", "raw", "-O", "qcow2", "-o", `cluster_size=${clusterSize}`, spread, qcow2);
    const size = (await stat(qcow2)).size;
    const id = await upload(qcow2, `spread-${clusterSize}`);
    const out = join(dir, `spread-${clusterSize}.raw`);
    const { requests, bytesFetched } = await convertInPlace(id, out);
    assert.equal((await qemuCompare(spread, out)).code, 0, `cluster_size=${clusterSize}: same disk as its raw`);
    const blocks = Math.ceil(size / BLOCK);
    t.diagnostic(
      `cluster_size=${clusterSize}: ${requests} requests, ${bytesFetched} bytes for ${size} (${blocks} blocks)`,
    );
    // Each block once; at most the read-ahead past what was needed.
    assert.ok(blocks >= 6, `the image spans ${blocks} blocks`);
    assert.ok(
      requests <= blocks + READ_AHEAD,
      `cluster_size=${clusterSize}: ${requests} Range requests for ${blocks} blocks`,
    );
    assert.ok(
      bytesFetched <= size + READ_AHEAD * BLOCK,
      `cluster_size=${clusterSize}: ${bytesFetched} bytes fetched for ${size}`,
    );
  }
  // The compressed image the exports below read: small, so one or two requests.
  const small = await convertInPlace(imageId!, join(dir, "compressed.raw"));
  assert.equal((await qemuCompare(raw, join(dir, "compressed.raw"))).code, 0);
  assert.ok(small.requests <= Math.ceil(imageBytes / BLOCK) + READ_AHEAD, `${small.requests} requests`);
});

/** Glance images of every other format a driver reads, made by qemu-img from the same sample disk. */
const OTHER_SOURCES: ReadonlyArray<{ disk: string; qemu: string[] }> = [
  { disk: "vmdk", qemu: ["-O", "vmdk"] },
  { disk: "vhd", qemu: ["-O", "vpc"] },
  { disk: "vhdx", qemu: ["-O", "vhdx"] },
  { disk: "vdi", qemu: ["-O", "vdi"] },
];

for (const source of OTHER_SOURCES) {
  test(`a ${source.disk} Glance image exports to qcow2 read in place: no download, no temporary file, same disk`, async () => {
    const file = join(dir, `sample.${source.disk}`);
    await qemuImg("convert", "-f", "raw", ...source.qemu, raw, file);
    const image = await provider.uploadImage(
      { name: `chromo-q2ip-${source.disk}-${tag}`, diskFormat: source.disk, sizeBytes: (await stat(file)).size },
      createReadStream(file, { highWaterMark: MiB }),
    );
    extraImages.push(image.id);
    const state = join(dir, `state-${source.disk}`);
    const out = join(dir, `from-${source.disk}.qcow2`);
    const r = await cli(
      { clouds: env.clouds, state },
      "export",
      "--cloud",
      "a1",
      "--image",
      image.id,
      "--format",
      "qcow2",
      "--json",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    const done = jsonLines(r.stdout).at(-1) as { plan: { sourceAccess: string; temporaryBytes: number } };
    assert.equal(done.plan.sourceAccess, "random-access", `${source.disk} is read where Glance stores it`);
    assert.equal(done.plan.temporaryBytes, 0);
    for (const j of await readdir(join(state, "jobs"))) {
      const job = JSON.parse(await readFile(join(state, "jobs", j, "state.json"), "utf8"));
      assert.equal(job.bytes.download, 0, "nothing downloaded");
      const files = (await readdir(join(state, "jobs", j))).filter((f) => f !== "state.json");
      assert.deepEqual(files, [], "no temporary file beside the job's state");
    }
    assert.equal((await qemuCheck(out)).code, 0);
    assert.equal((await qemuCompare(raw, out)).code, 0, `the qcow2 made from ${source.disk} equals the source disk`);
  });
}

for (const format of ["raw", "vmdk", "ova"] as const) {
  test(`export of a qcow2 Glance image to ${format}: read in place with Range, no temporary download, qemu-img compare identical`, async () => {
    const out = join(dir, `export.${format}`);
    const r = await cli(env, "export", "--cloud", "a1", "--image", imageId!, "--format", format, "--json", out);
    assert.equal(r.code, 0, r.stderr);
    const events = jsonLines(r.stdout);
    const done = events.at(-1) as {
      event: string;
      plan: { mode: string; sourceAccess: string; temporaryBytes: number; notes: string[] };
    };
    assert.equal(done.event, "done", r.stdout);
    assert.equal(done.plan.mode, "convert");
    assert.equal(done.plan.sourceAccess, "random-access", "the plan reads the qcow2 where it is stored");
    assert.equal(done.plan.temporaryBytes, 0, "the preflight asks for no temporary space");
    assert.ok(!done.plan.notes.some((n) => /downloaded/.test(n)), done.plan.notes.join("; "));
    const phases = events.filter((e) => e.event === "phase" && e.state === "start").map((e) => e.phase);
    assert.ok(!phases.includes("download"), `no download phase (phases: ${phases.join(", ")})`);
    assert.ok(!events.some((e) => e.event === "progress" && e.phase === "download"), "no download progress");
    // Every job of this file reads in place: none counted a downloaded byte or left a file beside its state.
    for (const j of await readdir(join(env.state, "jobs"))) {
      const state = JSON.parse(await readFile(join(env.state, "jobs", j, "state.json"), "utf8"));
      assert.equal(state.status, "done");
      assert.equal(state.bytes.download, 0, `job ${j} downloaded nothing`);
      assert.equal(state.files.download, undefined);
      const files = (await readdir(join(env.state, "jobs", j))).filter((f) => f !== "state.json");
      assert.deepEqual(files, [], `job ${j} left no source copy`);
    }
    if (format === "ova") {
      // The appliance's one disk member, extracted with GNU tar, is the Glance image's disk.
      const x = join(dir, "ova-members");
      await mkdir(x);
      await extractAll(out, x);
      const vmdks = (await readdir(x)).filter((f) => f.endsWith(".vmdk"));
      assert.equal(vmdks.length, 1, `one disk member (${vmdks.join(", ")})`);
      const member = join(x, vmdks[0]!);
      assert.equal((await qemuCheck(member)).code, 0);
      assert.equal((await qemuCompare(glanceQcow2, member)).code, 0, "the OVA's disk equals the Glance image");
      return;
    }
    if (format !== "raw") assert.equal((await qemuCheck(out)).code, 0);
    assert.equal((await qemuCompare(raw, out)).code, 0, `${format} export equals the source disk`);
  });
}

test("preflight: a compressed qcow2's export is sized by its guest data, refused before any transfer where only the compressed size fits", async () => {
  // 160 MiB of repeated text: zlib packs each 64 KiB cluster into a few hundred bytes.
  const dataBytes = 160 * MiB;
  const dense = join(dir, "dense.raw");
  await makeRaw(dense, dataBytes, [{ offset: 0, data: Buffer.alloc(dataBytes, "chromogenic preflight ") }]);
  const compressed = join(dir, "dense.qcow2");
  await qemuImg("convert", "-f", "raw", "-O", "qcow2", "-c", dense, compressed);
  const storedBytes = (await stat(compressed)).size;
  const id = await upload(compressed, "dense");
  const fs = join(dir, "small-fs");
  await mkdir(fs);
  await runOk("mount", ["-t", "tmpfs", "-o", "size=48m,mode=0700", "chromo-q2ip", fs]);
  try {
    // The preflight's own rule (preflight.ts): 2 % and 16 MiB over the estimate.
    const need = (bytes: number) => Math.ceil(bytes * 1.02) + 16 * MiB;
    const s = await statfs(fs);
    const free = s.bavail * s.bsize;
    assert.ok(
      need(storedBytes) < free,
      `the stored size (${storedBytes}) fits in ${free} free bytes: old estimate passed`,
    );
    assert.ok(need(dataBytes) > free, "the guest data does not fit");
    const refusedEnv = { clouds: env.clouds, state: join(dir, "state-refused") };
    const out = join(fs, "dense.raw");
    const r = await cli(refusedEnv, "export", "--cloud", "a1", "--image", id, "--format", "raw", "--json", out);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /not enough space in .*small-fs: this job needs .* for the output/);
    const events = jsonLines(r.stdout);
    assert.ok(!events.some((e) => e.event === "phase"), `no phase started: ${r.stdout}`);
    assert.deepEqual(await readdir(fs), [], "nothing written into the small filesystem");
    // Temporary space likewise: a VDI's writer seeks, so a migration converts into a compact temporary file,
    // which holds the guest data too.
    const m = await cli(
      refusedEnv,
      "migrate",
      "--from",
      "a1",
      "--to",
      "a1",
      "--image",
      id,
      "--format",
      "vdi",
      "--name",
      `chromo-q2ip-refused-${tag}`,
      "--work-dir",
      fs,
      "--json",
    );
    assert.equal(m.code, 1, m.stdout + m.stderr);
    assert.match(m.stderr, /not enough space in .*small-fs.*: this job needs .* for temporary data/);
    assert.ok(!jsonLines(m.stdout).some((e) => e.event === "phase"), `no phase started: ${m.stdout}`);
    assert.deepEqual(await readdir(fs), [], "the job's work folder was removed");
    const names: string[] = [];
    for await (const image of provider.listImages()) names.push(image.name);
    assert.ok(!names.includes(`chromo-q2ip-refused-${tag}`), "no destination image was created");
  } finally {
    await runOk("umount", [fs]);
  }
});
