/**
 * What the CLI as a whole does with bad arguments and closed pipes, as users of qemu-img and git expect: a
 * usage error is one line and a pointer to the right help, exit 2; output into a pipe whose reader has gone
 * ends quietly with SIGPIPE's status.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CLI, qemuImg, runCli, scratch } from "../helpers/tools.js";

const usageCases: [string[], string, string][] = [
  [["convert", "--bogus", "a", "b"], "error: unknown option '--bogus'", "(see 'chromogenic convert --help')"],
  [["nosuch"], "error: unknown command 'nosuch'", "(see 'chromogenic --help')"],
  [["guest", "nosuch"], "error: unknown command 'nosuch'", "(see 'chromogenic guest --help')"],
  [["info"], "error: missing required argument 'image'", "(see 'chromogenic info --help')"],
];

for (const [args, error, hint] of usageCases) {
  test(`usage error: chromogenic ${args.join(" ")} is one line and a hint, exit 2`, async () => {
    const r = await runCli(args, process.env);
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(r.stderr.trimEnd().split("\n"), [error, hint]);
    assert.equal(r.stdout, "");
  });
}

for (const args of [["formats"], ["formats", "--json"], ["convert", "-o", "help", "-O", "qcow2"]]) {
  test(`chromogenic ${args.join(" ")} into a closed pipe ends quietly with SIGPIPE's status`, async () => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    // The reader is gone before the first byte is written, like `| head -0`.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 141);
    assert.equal(stderr, "");
  });
}

test("convert without -O writes raw, as qemu-img convert does", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.qcow2");
  const output = join(dir, "out.img");
  await qemuImg("create", "-q", "-f", "qcow2", input, "4M");
  const r = await runCli(["convert", "-q", input, output], process.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await qemuImg("info", output), /file format: raw/);
  assert.equal((await stat(output)).size, 4 * 2 ** 20);
});

test("a repeatable option takes one value each and leaves the positional arguments alone", async (t) => {
  const dir = await scratch(t);
  const base = join(dir, "base.qcow2");
  const top = join(dir, "top.qcow2");
  await qemuImg("create", "-q", "-f", "qcow2", base, "4M");
  await qemuImg("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top);
  const info = await runCli(["info", "--json", "--allow-reference", base, top], process.env);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /"backingFile":"[^"]*base\.qcow2"/);
  // Parsed as two properties, a server and a name: what fails is finding the cloud, not the arguments.
  const create = await runCli(
    ["image", "create", "--cloud", "no-such-cloud", "--property", "a=1", "--property", "b=2", "server", "name"],
    { ...process.env, OS_CLIENT_CONFIG_FILE: join(dir, "none.yaml") },
  );
  assert.equal(create.code, 1, create.stderr);
  assert.doesNotMatch(create.stderr, /missing required argument/);
});

test('"-" as an output is refused, not written as a file called "-"', async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await qemuImg("create", "-q", "-f", "raw", input, "1M");
  const r = await runCli(["convert", input, "-"], { ...process.env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /output "-": images are not written to standard output/);
  assert.equal(r.stdout, "");
  await assert.rejects(stat("-"));
  const local = await runCli(["convert", "-q", input, "./-"], { ...process.env });
  t.after(() => rm("-", { force: true }));
  assert.equal(local.code, 0, local.stderr);
  assert.equal((await stat("-")).size, 2 ** 20);
});

test("convert takes qemu-img's -p, -t, -T, -S, -W and -m; -t unsafe skips the flush; bad values are usage errors", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.qcow2");
  await qemuImg("create", "-q", "-f", "qcow2", input, "4M");
  const args = ["-p", "-t", "unsafe", "-T", "none", "-S", "4k", "-W", "-m", "8", "-O", "qcow2", input];
  const r = await runCli(["convert", ...args, join(dir, "out.qcow2")], process.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await qemuImg("compare", input, join(dir, "out.qcow2")), /Images are identical/);
  for (const [flag, value, message] of [
    ["-t", "fast", /-t fast: the cache modes are none, writeback, writethrough, directsync, unsafe/],
    ["-S", "lots", /-S lots: not a size/],
    ["-m", "64", /-m 64: qemu-img takes 1 to 16/],
  ] as const) {
    const bad = await runCli(["convert", flag, value, input, join(dir, "bad.raw")], process.env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
});

test("inspect, clean and guest cleanup without root say they need root, in one line, touching nothing", async (t) => {
  const dir = await scratch(t);
  const image = join(dir, "disk.qcow2");
  await qemuImg("create", "-q", "-f", "qcow2", image, "4M");
  for (const args of [
    ["inspect", image],
    ["clean", "--dry-run", image],
    ["guest", "cleanup"],
  ]) {
    const child = spawn(process.execPath, [CLI, ...args], {
      uid: 65534,
      gid: 65534,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 2, stderr);
    assert.match(
      stderr.trim(),
      new RegExp(`^chromogenic: ${args[0] === "guest" ? "guest cleanup" : args[0]} needs root: `),
    );
  }
});
