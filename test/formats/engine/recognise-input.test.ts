/**
 * The library sees an OVA as the CLI does: imageInfo describes the appliance and convertFile converts one of its
 * disks, whether the OVA is a path, an input given open or a URL, where they once read its tar bytes as a raw
 * disk without a word. Naming a format reads the input as that format; a disk number for a disk image, open
 * options for an OVA and guest access to an OVA are refused by name.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { access, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { imageInfo } from "../../../src/formats/engine/image-info.js";
import { convertFile } from "../../../src/formats/engine/convert.js";
import { exportOva } from "../../../src/formats/ova/ova-writer.js";
import { inspectImage } from "../../../src/guest/inspect/inspect-image.js";
import { MemoryInput } from "../../helpers/memory-input.js";
import { RangeServer, servedBuffer } from "../../helpers/range-server.js";
import { makeRaw, mixedRegions, pattern, qemuCompare, runCli, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

/** An OVA of two disks with different content, and the disks. */
async function twoDiskOva(dir: string) {
  const a = join(dir, "a.raw");
  const b = join(dir, "b.raw");
  await makeRaw(a, 12 * MiB, mixedRegions(12 * MiB));
  await makeRaw(b, 3 * MiB + 512, [{ offset: MiB, data: pattern(MiB, 5) }]);
  const ova = join(dir, "app.ova");
  await exportOva({ inputs: [a, b], output: ova, target: "virtualbox", name: "app", cpus: 3, memoryMiB: 1536 });
  return { a, b, ova };
}

const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

test("imageInfo describes an OVA's appliance as `info` does, from a path, an open input and a URL", async (t) => {
  const dir = await scratch(t);
  const { ova } = await twoDiskOva(dir);
  const info = await imageInfo(ova);
  assert.equal(info.kind, "appliance");
  assert.ok(info.kind === "appliance");
  assert.equal(info.systems[0]?.cpus, 3);
  assert.deepEqual(
    info.disks.map((d) => d.capacity),
    [12 * MiB, 3 * MiB + 512],
  );
  const cli = await runCli(["info", "--json", ova], process.env);
  assert.equal(cli.code, 0, cli.stderr);
  const { event, command, ...printed } = JSON.parse(cli.stdout) as Record<string, unknown>;
  assert.deepEqual([event, command], ["done", "info"], "one `done` line, as every --json output ends");
  assert.deepEqual(printed, plain(info), "the CLI prints what the library returns");

  const bytes = await readFile(ova);
  const memory = new MemoryInput(bytes, "in-memory.ova");
  assert.deepEqual(plain(await imageInfo(memory)), { ...plain(info), path: "in-memory.ova" });
  assert.equal(memory.closed, true, "the input given open is closed");

  const server = await RangeServer.start(t, servedBuffer(bytes, { etag: '"v1"' }));
  const url = server.url("/appliances/app.ova?X-Amz-Signature=secret");
  const remote = await imageInfo(url);
  assert.deepEqual({ ...plain(remote), path: ova }, plain(info));
  assert.doesNotMatch(remote.path, /secret/, "the URL is shown without its query");
});

test("imageInfo with a format named reads an OVA's bytes as that format, as `info -f` does", async (t) => {
  const dir = await scratch(t);
  const { ova } = await twoDiskOva(dir);
  const asRaw = await imageInfo(ova, { format: "raw" });
  assert.equal(asRaw.kind, "disk");
  assert.equal(asRaw.format, "raw");
  assert.equal(asRaw.kind === "disk" && asRaw.virtualSize, (await stat(ova)).size);
  await assert.rejects(imageInfo(ova, { driverOptions: { size: "1M" } }), { code: "EUSAGE", message: /is an OVA/ });
});

test("convertFile converts an OVA's disk as `convert` does: disk 1 by default, any disk asked, manifest verified", async (t) => {
  const dir = await scratch(t);
  const { a, b, ova } = await twoDiskOva(dir);
  const warnings: string[] = [];
  const first = await convertFile({
    input: ova,
    output: join(dir, "first.qcow2"),
    outputFormat: "qcow2",
    onWarning: (w) => warnings.push(w),
  });
  assert.equal(first.disk, 1);
  assert.equal(first.inputFormat, "ova/vmdk");
  assert.deepEqual(first.manifest?.verified, ["app.ovf", "app-disk1.vmdk", "app-disk2.vmdk"]);
  assert.deepEqual(first.warnings, []);
  assert.deepEqual(warnings, []);
  assert.equal((await qemuCompare(a, join(dir, "first.qcow2"))).code, 0);

  const bytes = await readFile(ova);
  const server = await RangeServer.start(t, servedBuffer(bytes, { etag: '"v1"' }));
  const remote = await convertFile({
    input: server.url("/app.ova"),
    disk: 2,
    output: join(dir, "remote.raw"),
    outputFormat: "raw",
  });
  assert.equal(remote.disk, 2);
  assert.equal(remote.manifest?.algorithm, "sha1");
  assert.equal((await qemuCompare(b, join(dir, "remote.raw"))).code, 0);

  const memory = new MemoryInput(bytes, "in-memory.ova");
  const fromMemory = await convertFile({
    input: memory,
    disk: 2,
    output: join(dir, "memory.vdi"),
    outputFormat: "vdi",
  });
  assert.equal(fromMemory.disk, 2);
  assert.equal(memory.closed, true);
  assert.equal((await qemuCompare(b, join(dir, "memory.vdi"))).code, 0);

  // Named as raw, the OVA is converted as the raw bytes it is.
  const asRaw = await convertFile({
    input: ova,
    inputFormat: "raw",
    output: join(dir, "tar.raw"),
    outputFormat: "raw",
  });
  assert.equal(asRaw.inputFormat, "raw");
  assert.equal(asRaw.disk, undefined);
  assert.deepEqual(await readFile(join(dir, "tar.raw")), bytes);
});

test("a disk number for a disk image and input options for an OVA are refused, nothing written", async (t) => {
  const dir = await scratch(t);
  const { a, ova } = await twoDiskOva(dir);
  const memory = new MemoryInput(await readFile(a), "disk.raw");
  const output = join(dir, "out.qcow2");
  await assert.rejects(convertFile({ input: memory, disk: 2, output, outputFormat: "qcow2" }), {
    code: "EUSAGE",
    message: /^disk\.raw is not an OVA: --disk/,
  });
  assert.equal(memory.closed, true, "the input given open is closed");
  await assert.rejects(convertFile({ input: ova, inputOptions: { size: "1M" }, output, outputFormat: "qcow2" }), {
    code: "EUSAGE",
    message: /app\.ova is an OVA: open options apply to disk images/,
  });
  await assert.rejects(convertFile({ input: ova, disk: 3, output, outputFormat: "qcow2" }), /no disk 3/);
  await assert.rejects(access(output), { code: "ENOENT" });
});

test("inspection refuses an OVA by name rather than mounting its tar bytes as a disk", async (t) => {
  const dir = await scratch(t);
  const { ova } = await twoDiskOva(dir);
  const before = process.env.CHROMOGENIC_STATE_DIR;
  process.env.CHROMOGENIC_STATE_DIR = join(dir, "state");
  t.after(() => {
    if (before === undefined) delete process.env.CHROMOGENIC_STATE_DIR;
    else process.env.CHROMOGENIC_STATE_DIR = before;
  });
  await assert.rejects(inspectImage(ova), {
    code: "EUSAGE",
    message: /app\.ova is an OVA \(an appliance\), not a disk image: convert one of its disks first/,
  });
});
