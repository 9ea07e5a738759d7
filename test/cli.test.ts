import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeRaw, mixedRegions, qemuCompare, run, scratch } from "./helpers/tools.js";
import { doneOf, eventLines } from "./helpers/event-lines.js";

const MiB = 2 ** 20;
const BIN = "bin/chromogenic.js";

function cli(...args: string[]) {
  return run(process.execPath, [BIN, ...args]);
}

/** Runs `convert -q ARGS` with `hook` preloaded, and returns what the hook reported on stderr as `TAG <json>`. */
async function convertWithHook(hook: string, tag: string, ...args: string[]): Promise<unknown> {
  const r = await run(process.execPath, ["--import", hook, BIN, "convert", "-q", ...args]);
  assert.equal(r.code, 0, r.stderr);
  const line = r.stderr.split("\n").find((l) => l.startsWith(`${tag} `));
  assert.ok(line, r.stderr);
  return JSON.parse(line.slice(tag.length + 1));
}

test("info --json reports a raw image's sizes", async (t) => {
  const dir = await scratch(t);
  const img = join(dir, "a.img");
  await makeRaw(img, 8 * MiB, [{ offset: MiB, data: Buffer.alloc(8192, 1) }]);
  const r = await cli("info", "--json", img);
  assert.equal(r.code, 0, r.stderr);
  const info = doneOf(r.stdout, "info");
  assert.equal(info.format, "raw");
  assert.equal(info.virtualSize, 8 * MiB);
  assert.equal(info.allocatedBytes, 8192);
});

test("convert --json emits progress events and a result; output identical", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  const output = join(dir, "out.qcow2");
  await makeRaw(input, 40 * MiB + 512, mixedRegions(40 * MiB + 512));
  const r = await cli("convert", "--json", "-O", "qcow2", input, output);
  assert.equal(r.code, 0, r.stderr);
  const events = eventLines(r.stdout);
  const done = doneOf(r.stdout, "convert");
  assert.equal(done.outputFormat, "qcow2");
  assert.ok(events.slice(0, -1).every((e) => e.event === "progress" && e.phase === "convert"));
  assert.equal((await qemuCompare(input, output)).code, 0);
});

test("errors are one clear line with the right exit code, and leave no output behind", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, MiB);
  const bad = await cli("convert", "-O", "nosuchformat", input, join(dir, "x"));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown format "nosuchformat"/);
  const badOpt = await cli("convert", "-O", "qcow2", "-o", "cluster_size=3k", input, join(dir, "y.qcow2"));
  assert.equal(badOpt.code, 2, badOpt.stderr);
  const missing = await cli("info", join(dir, "missing.img"));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ENOENT|no such file/i);
  assert.deepEqual((await readdir(dir)).sort(), ["in.raw"]);
});

test("a backing file is read only when --allow-reference names it, and the refusal says so", async (t) => {
  const dir = await scratch(t);
  const base = join(dir, "base.raw");
  await makeRaw(base, 4 * MiB, [{ offset: MiB, data: Buffer.alloc(8192, 7) }]);
  const overlay = join(dir, "overlay.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay]);
  const out = join(dir, "out.raw");
  const args = ["convert", "-q", "-O", "raw", overlay, out];
  const refused = await cli(...args);
  assert.notEqual(refused.code, 0, "convert must refuse the backing file");
  assert.match(refused.stderr, /backing file "base\.raw".*--allow-reference PATH/s);
  const allowed = await cli(...args, "--allow-reference", base);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal((await qemuCompare(overlay, out)).code, 0);
  // info reads the overlay's own metadata only, as qemu-img info does: the backing file is named, not opened.
  const info = await cli("info", overlay);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /backing file: base\.raw\nbacking file format: raw/);
});

test("Ctrl-C during a conversion leaves nothing under the output name or as a temporary", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "big.raw");
  // base64 text: deflate has real work to do on it (random bytes are skipped as incompressible in a blink).
  await run("sh", ["-c", `head -c 300M /dev/urandom | base64 -w 0 | head -c 400M > "${input}"`]);
  const child = spawn(process.execPath, [BIN, "convert", "-q", "-O", "qcow2", "-c", input, join(dir, "out.qcow2")]);
  // Listen before anything else: a conversion that ends early must not leave this test waiting forever.
  const closed = new Promise<number | null>((r) => child.on("close", r));
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  // Interrupt once the conversion is under way: its temporary output exists.
  for (let i = 0; i < 200 && (await readdir(dir)).length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 200));
  child.kill("SIGINT");
  const code = await closed;
  assert.equal(code, 130, stderr);
  assert.deepEqual(await readdir(dir), ["big.raw"]);
});

test("the CLI (its single-file bundle in dist/cli) finds every native helper and the built-in cleaning profiles", async () => {
  // The bundle sits at another depth than dist/src: files beside the code are found from the package root.
  const formats = await cli("formats");
  assert.equal(formats.code, 0, formats.stderr);
  assert.match(
    formats.stdout,
    /native helpers: SEEK_DATA built; large reads and writes built; zstd batches built; zlib inflate batches built; output names built; image locks built\n$/,
  );
  const ops = await cli("clean", "--list-operations");
  assert.equal(ops.code, 0, ops.stderr);
  assert.match(ops.stdout, /machine-id/);
  // A built-in profile is loaded (from profiles/) before the image is looked at.
  const unknown = await cli("clean", "--profile", "nosuch", "--dry-run", "/nonexistent.img");
  assert.match(unknown.stderr, /neither a built-in profile \(atmosphere, default\)/);
  const known = await cli("clean", "--profile", "atmosphere", "--dry-run", "/nonexistent.img");
  assert.match(known.stderr, /image \/nonexistent\.img does not exist/);
});

/** A module hook that reports, as `MODULES <json>` on stderr when the process exits, every module URL loaded. */
async function moduleListHook(dir: string): Promise<string> {
  const hook = join(dir, "modules.mjs");
  await writeFile(
    hook,
    'import { registerHooks } from "node:module";\n' +
      "const urls = [];\n" +
      "registerHooks({ load(url, context, next) { urls.push(url); return next(url, context); } });\n" +
      'process.on("exit", () => process.stderr.write("MODULES " + JSON.stringify(urls) + "\\n"));\n',
  );
  return hook;
}

/** Whether `convert -q ARGS` runs code of the npm package `name` (a folder under node_modules). */
async function convertLoadsPackage(hook: string, name: string, ...args: string[]): Promise<boolean> {
  const urls = (await convertWithHook(hook, "MODULES", ...args)) as string[];
  const files = urls.filter((u) => u.startsWith("file:"));
  assert.ok(
    files.some((u) => u.endsWith("/dist/cli/main.js")),
    "the hook sees the bundle's modules",
  );
  // The bundle keeps each package file's path as a comment above its code.
  const texts = await Promise.all(files.map((u) => readFile(fileURLToPath(u), "utf8")));
  return texts.some((text) => text.includes(`node_modules/${name}/`));
}

test("a convert without -o loads no zod; one with -o loads it to check them", async (t) => {
  // zod is ~15 ms of start-up, as much again as the rest of a small conversion: create options are checked with
  // it only when there are some (src/formats/engine/create-option-validation.ts).
  const dir = await scratch(t);
  const hook = await moduleListHook(dir);
  const input = join(dir, "in.raw");
  await makeRaw(input, MiB, mixedRegions(MiB));
  const loadsZod = (...options: string[]) => convertLoadsPackage(hook, "zod", ...options, input, join(dir, "out"));
  for (const format of ["raw", "qcow2", "vmdk", "vhd", "vdi"]) {
    assert.equal(await loadsZod("-O", format), false, `${format} without options loaded zod`);
  }
  assert.equal(await loadsZod("-O", "vdi", "-o", "static=on"), true, "options are checked with zod");
});

test("a convert of a disk image loads no XML parser; one of an OVA loads it to read the appliance", async (t) => {
  // The OVA reader (fast-xml-parser and all) was a sixth of the CLI's start-up: convertFile recognises an OVA
  // from its first tar header and loads the reader only for one (src/formats/engine/recognise-input.ts).
  const dir = await scratch(t);
  const hook = await moduleListHook(dir);
  const input = join(dir, "in.raw");
  await makeRaw(input, MiB, mixedRegions(MiB));
  const ova = join(dir, "in.ova");
  const exported = await cli("export", "-q", "--format", "ova", "--target", "vmware", input, ova);
  assert.equal(exported.code, 0, exported.stderr);
  const loadsParser = (from: string) =>
    convertLoadsPackage(hook, "fast-xml-parser", "-O", "qcow2", from, join(dir, "out.qcow2"));
  assert.equal(await loadsParser(input), false, "a raw disk's conversion loaded the XML parser");
  assert.equal(await loadsParser(ova), true, "an OVA is read with the XML parser");
  assert.equal((await qemuCompare(input, join(dir, "out.qcow2"))).code, 0, "the OVA's disk was converted");
});

test("an uncompressed convert loads neither node:crypto nor node:zlib; a compressed one loads zlib when it needs it", async (t) => {
  // Start-up is a sixth of an uncompressed conversion of the benchmark disk, and these two modules were ~7 ms
  // of it (src/util/lazy-builtins.ts): a static import of either on the convert path must not creep back.
  const dir = await scratch(t);
  const hook = join(dir, "builtins.mjs");
  await writeFile(
    hook,
    'process.on("exit", () => process.stderr.write("BUILTINS " + JSON.stringify(process.moduleLoadList) + "\\n"));\n',
  );
  const input = join(dir, "in.raw");
  await makeRaw(input, 6 * MiB, mixedRegions(6 * MiB));
  const loaded = async (...options: string[]) => {
    const output = join(dir, `out-${options.join("")}.qcow2`);
    const modules = (await convertWithHook(hook, "BUILTINS", "-O", "qcow2", ...options, input, output)) as string[];
    return modules.filter((m) => m.startsWith("NativeModule "));
  };
  const plain = await loaded();
  assert.ok(plain.includes("NativeModule fs"), "the hook sees the modules loaded");
  assert.deepEqual(
    plain.filter((m) => m === "NativeModule crypto" || m === "NativeModule zlib"),
    [],
    "an uncompressed conversion loaded crypto or zlib",
  );
  const compressed = await loaded("-o", "compression_type=zlib");
  assert.ok(compressed.includes("NativeModule zlib"), "zlib is loaded when compressing");
});
