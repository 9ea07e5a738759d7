/**
 * Failures that start in a library (fast-xml-parser's nesting limit, zlib, JSON) reach the user through the one
 * error model: one line naming the user's file and what is wrong with it, exit code 1, nothing written.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, open, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCliFromStdin } from "../helpers/cli-stdin.js";
import { writeTar } from "../helpers/ova-tools.js";
import { makeRaw, qemuImg, runCli, scratch, pattern } from "../helpers/tools.js";
import { assertRefusedInOneLine } from "../helpers/cli-refusal.js";

const MiB = 2 ** 20;

test("an OVF descriptor nested deeper than the XML parser allows is refused naming the descriptor", async (t) => {
  const dir = await scratch(t);
  const depth = 5000;
  const ovf =
    '<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References/>' +
    "<Section><Info>x</Info>".repeat(depth) +
    "</Section>".repeat(depth) +
    "</Envelope>";
  const ova = join(dir, "deep.ova");
  await writeTar(ova, [{ name: "deep.ovf", data: Buffer.from(ovf) }]);
  const message =
    /^chromogenic: (.*deep\.ova|-):deep\.ovf: OVF descriptor cannot be read: its elements nest deeper than 100 levels/;
  for (const args of [
    ["info", ova],
    ["info", "--json", ova],
    ["convert", "-q", "-O", "raw", ova, join(dir, "out.raw")],
  ]) {
    assertRefusedInOneLine(await runCli(args, process.env), message, args.join(" "));
  }
  assertRefusedInOneLine(await runCliFromStdin(["info", "-"], { path: ova }), message, "info from a pipe");
  assert.deepEqual(await readdir(dir), ["deep.ova"], "nothing written");
});

test("a corrupt compressed qcow2 cluster or VMDK grain is refused naming the image and where", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "in.raw");
  // Random bytes written as text: compressible, but not so much that the clusters stay tiny.
  await makeRaw(raw, 4 * MiB, [{ offset: 0, data: Buffer.from(pattern(3 * MiB, 8).toString("base64")) }]);
  const qcow2 = join(dir, "c.qcow2");
  await qemuImg("convert", "-c", "-O", "qcow2", raw, qcow2);
  const vmdk = join(dir, "c.vmdk");
  await qemuImg("convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk);
  // Overwrite the middle of each file (compressed data, past the metadata at its front) with garbage.
  for (const image of [qcow2, vmdk]) {
    const size = (await readFile(image)).length;
    const h = await open(image, "r+");
    await h.write(Buffer.alloc(4096, 0x5a), 0, 4096, Math.floor(size / 2 / 512) * 512);
    await h.close();
  }
  const out = join(dir, "out");
  await mkdir(out);
  assertRefusedInOneLine(
    await runCli(["convert", "-q", "-O", "raw", qcow2, join(out, "q.raw")], process.env),
    /^chromogenic: .*c\.qcow2: qcow2 compressed cluster at guest offset \d+ (is not valid deflate data|decompresses to)/,
    "qcow2",
  );
  assertRefusedInOneLine(
    await runCli(["convert", "-q", "-O", "raw", vmdk, join(out, "v.raw")], process.env),
    /^chromogenic: .*c\.vmdk: .*(grain|marker).* (not a valid zlib stream|inflates to more than|names sector)/,
    "vmdk",
  );
  assertRefusedInOneLine(
    await runCliFromStdin(["convert", "-q", "-O", "raw", "-", join(out, "p.raw")], { path: vmdk }),
    /^chromogenic: -: .*(grain|marker).*/,
    "vmdk from a pipe",
  );
  assert.deepEqual(await readdir(out), [], "nothing written");
});

test("a job whose state file is not JSON is refused naming the file", async (t) => {
  const dir = await scratch(t);
  const job = join(dir, "jobs", "job-corrupt1");
  await mkdir(job, { recursive: true });
  await writeFile(join(job, "state.json"), '{"id": "job-corrupt1", "status": ');
  const env = { ...process.env, CHROMOGENIC_STATE_DIR: dir };
  const r = await runCli(["resume", "job-corrupt1"], env);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`^chromogenic: job job-corrupt1: its state file ${job}/state\\.json is not valid JSON: `),
  );
  assert.equal(r.stderr.split("\n").length, 2, "one line");
});

test("a local store's image record that is not JSON is refused naming the file", async (t) => {
  const dir = await scratch(t);
  const id = "0123abcd-0000-4000-8000-00000000abcd";
  await writeFile(join(dir, `${id}.json`), "{ not json");
  await writeFile(join(dir, `${id}.img`), Buffer.alloc(512));
  const r = await runCli(["image", "list", "--cloud", `local:${dir}`], process.env);
  assertRefusedInOneLine(r, new RegExp(`^chromogenic: ${dir}/${id}\\.json: not a valid image record: `), "image list");
});
