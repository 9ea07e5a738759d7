/**
 * New and replaced outputs, through the CLI: a new output is never more readable than its input (and its owner's
 * only when the input is not a local file); a replaced one keeps its owner, group and mode; a failed conversion
 * leaves the old output byte for byte, a successful one replaces it and leaves nothing else behind. With and
 * without the file-names addon (O_TMPFILE and RENAME_EXCHANGE, or a named temporary file and rename).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, chown, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RangeServer, servedBuffer } from "../../helpers/range-server.js";
import { makeRaw, mixedRegions, qemuCompare, runCli, runOk, scratch, sha256File } from "../../helpers/tools.js";

const MiB = 2 ** 20;
const SIZE = 8 * MiB;

/** The group "adm" exists on Debian; a replaced output must keep it rather than take ours. */
async function admGid(): Promise<number> {
  const line = (await readFile("/etc/group", "utf8")).split("\n").find((l) => l.startsWith("adm:"));
  assert.ok(line, "these tests need the group adm (/etc/group)");
  return Number(line.split(":")[2]);
}

/** This process's umask (the CLI inherits it), read without process.umask()'s deprecated getter. */
async function umask(): Promise<number> {
  const line = (await readFile("/proc/self/status", "utf8")).split("\n").find((l) => l.startsWith("Umask:"));
  return parseInt(line!.split(/\s+/)[1]!, 8);
}

/** The CLI's environment with the file-names addon on (the default) or off (the fallback path). */
const MODES = [
  { name: "O_TMPFILE and RENAME_EXCHANGE", env: process.env },
  { name: "a named temporary file and rename", env: { ...process.env, CHROMOGENIC_NATIVE_NAMES: "off" } },
];

for (const { name, env } of MODES) {
  test(`a new output takes its input's permissions, never more (${name})`, async (t) => {
    const dir = await scratch(t);
    for (const mode of [0o600, 0o640, 0o644, 0o755]) {
      const input = join(dir, `in-${mode.toString(8)}.raw`);
      await makeRaw(input, SIZE, mixedRegions(SIZE));
      await chmod(input, mode);
      const output = join(dir, `out-${mode.toString(8)}.qcow2`);
      const r = await runCli(["convert", "-q", "-O", "qcow2", input, output], env);
      assert.equal(r.code, 0, r.stderr);
      const expected = mode & 0o666 & ~(await umask());
      assert.equal((await stat(output)).mode & 0o777, expected, `input ${mode.toString(8)}`);
      assert.equal((await qemuCompare(input, output)).code, 0);
    }
  });

  test(`replacing an output keeps its owner, group and mode, and leaves nothing else (${name})`, async (t) => {
    const dir = await scratch(t);
    const input = join(dir, "in.raw");
    await makeRaw(input, SIZE, mixedRegions(SIZE));
    await chmod(input, 0o600);
    const output = join(dir, "out.qcow2");
    await writeFile(output, "an older output\n");
    await chown(output, 0, await admGid());
    await chmod(output, 0o640);
    const r = await runCli(["convert", "-q", "-O", "qcow2", input, output], env);
    assert.equal(r.code, 0, r.stderr);
    const st = await stat(output);
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, await admGid());
    assert.equal((await qemuCompare(input, output)).code, 0);
    // The replaced file's name is gone by the time the CLI exits (its blocks are freed after, off our clock).
    assert.deepEqual((await readdir(dir)).sort(), ["in.raw", "out.qcow2"]);
  });

  test(`a failed conversion leaves the old output byte for byte, and no temporary file (${name})`, async (t) => {
    const dir = await scratch(t);
    const good = join(dir, "good.raw");
    await makeRaw(good, SIZE, mixedRegions(SIZE));
    const output = join(dir, "out.qcow2");
    let r = await runCli(["convert", "-q", "-O", "qcow2", good, output], env);
    assert.equal(r.code, 0, r.stderr);
    await chown(output, 0, await admGid());
    await chmod(output, 0o640);
    const before = { hash: await sha256File(output), stat: await stat(output) };
    // A qcow2 cut short: its data clusters lie past its end, found only once the conversion reads them.
    const broken = join(dir, "broken.qcow2");
    await runOk("qemu-img", ["convert", "-O", "qcow2", good, broken]);
    await runOk("truncate", ["-s", String(512 * 1024), broken]);
    r = await runCli(["convert", "-q", "-O", "qcow2", broken, output], env);
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /partial/);
    assert.equal(await sha256File(output), before.hash, "the old output changed");
    const after = await stat(output);
    assert.deepEqual(
      [after.ino, after.mode, after.uid, after.gid],
      [before.stat.ino, before.stat.mode, before.stat.uid, before.stat.gid],
    );
    assert.deepEqual((await readdir(dir)).sort(), ["broken.qcow2", "good.raw", "out.qcow2"]);
  });
}

test("the output of an input that is not a local file (a URL) is its owner's only", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, SIZE, mixedRegions(SIZE));
  await chmod(input, 0o644);
  const server = await RangeServer.start(t, servedBuffer(await readFile(input)));
  const output = join(dir, "out.qcow2");
  const r = await runCli(["convert", "-q", "-f", "raw", "-O", "qcow2", server.url(), output], process.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(output)).mode & 0o777, 0o600);
  assert.equal((await qemuCompare(input, output)).code, 0);
});
