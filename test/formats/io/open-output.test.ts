/**
 * What cannot be an output is refused before any work, through the CLI: a folder, a FIFO (which must not hang the
 * conversion), a name in a folder that does not exist, a dangling symlink. The message names the user's path, never
 * a temporary name or a bare errno, and nothing is created.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { makeRaw, runCli, runOk, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

/** Converts `input` to `output` as qcow2; the refusal must be a usage error (2), quick, with no progress shown. */
async function refused(input: string, output: string, expected: RegExp): Promise<void> {
  const r = await runCli(["convert", "--json", "-O", "qcow2", input, output], process.env, 20_000);
  assert.equal(r.code, 2, `${output}: ${r.stderr}`);
  // With --json, the refusal's error event is all there is: no progress, no phase began.
  const events = r.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { event: string; code?: string });
  assert.deepEqual(
    events.map((e) => [e.event, e.code]),
    [["error", "EUSAGE"]],
    "work started before the output was refused",
  );
  assert.match(r.stderr, expected);
  assert.doesNotMatch(r.stderr, /partial|\bE[A-Z]{3,}\b/, "an internal name or an errno reached the user");
}

test("a folder, a FIFO, a missing folder or a dangling symlink as the output is refused, naming it", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, 4 * MiB);
  const folder = join(dir, "folder");
  await mkdir(folder);
  const fifo = join(dir, "fifo");
  await runOk("mkfifo", [fifo]);
  const dangling = join(dir, "dangling.qcow2");
  await symlink(join(dir, "nowhere", "x.qcow2"), dangling);
  const before = (await readdir(dir)).sort();

  await refused(input, folder, new RegExp(`^chromogenic: output ${folder} is a folder: name a file in it$`, "m"));
  await refused(input, fifo, new RegExp(`^chromogenic: output ${fifo} is a FIFO \\(named pipe\\)`, "m"));
  const missing = join(dir, "nosuch", "out.qcow2");
  await refused(
    input,
    missing,
    new RegExp(`^chromogenic: cannot create output ${missing}: the folder ${join(dir, "nosuch")} does not exist$`, "m"),
  );
  await refused(input, dangling, /output .*dangling\.qcow2 is a symbolic link to a file that does not exist/);
  assert.deepEqual((await readdir(dir)).sort(), before);
  assert.deepEqual(await readdir(folder), []);
});
