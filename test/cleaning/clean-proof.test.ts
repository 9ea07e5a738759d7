/**
 * Proof that `chromogenic clean` does what it says on real guests: a Debian bookworm root built by mmdebstrap
 * and a constructed Rocky Linux 9 tree, each with user data, credentials, logs, cloud-init state and Atmosphere
 * leftovers planted. Each run goes qcow2 in → qcow2 out through the CLI; the output is checked by qemu-img and
 * e2fsck, every planted path against its expected outcome, and the whole tree against the report: what changed
 * is exactly what the report lists, nothing more, nothing less. The dry run lists exactly what the real run then
 * does, and a second clean finds nothing left to do.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import {
  changeKeys,
  checkOutcomes,
  contentPaths,
  fsckRoot,
  guestScratch,
  leftovers,
  reportVersusDiff,
  runClean,
  sha256File,
  snapshotImage,
  type GuestScratch,
} from "../helpers/clean-proof.js";
import { debianGuest, rhelGuest, type BuiltGuest } from "../helpers/debian-guest.js";
import { isRoot } from "../helpers/guest-images.js";
import { describeDiff, diffManifests } from "../helpers/tree-manifest.js";
import { qemuCheck, runOk } from "../helpers/tools.js";

const skip = !(await isRoot()) ? "needs root (mmdebstrap, loop devices and mounts)" : false;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Cleans `guest` (converted to qcow2) with `profileArgs`, dry run first, and checks everything the proof
 * promises. Returns nothing: every check is an assertion.
 */
async function proveClean(
  s: GuestScratch,
  guest: BuiltGuest,
  profile: "default" | "atmosphere",
  profileArgs: readonly string[],
): Promise<void> {
  const input = join(s.dir, `${guest.name}.qcow2`);
  await runOk("qemu-img", ["convert", "-O", "qcow2", guest.raw, input]);
  const sourceHash = await sha256File(input);
  const readPaths = contentPaths(guest.expectations);
  const snapState = join(s.dir, "snap-state");
  const before = await snapshotImage(input, snapState, readPaths);

  // Dry run: nothing written (the CLI refuses an OUTPUT with --dry-run); the report lists the plan.
  const output = join(s.dir, `${guest.name}-${profile}.qcow2`);
  const dry = await runClean(s, [...profileArgs, "--dry-run", input], `${profile}-dry.json`);
  assert.equal(dry.code, 0, `dry run failed: ${dry.stderr}`);
  assert.ok(dry.report, "the dry run wrote its report");
  assert.equal(dry.report.dryRun, true);
  assert.equal(await exists(output), false, "a dry run writes no output");
  assert.equal(await sha256File(input), sourceHash, "a dry run leaves the source untouched");
  assert.deepEqual(await leftovers(s.dir), []);

  const real = await runClean(s, [...profileArgs, input, output], `${profile}.json`);
  assert.equal(real.code, 0, `clean failed: ${real.stderr}`);
  assert.ok(real.report, "the run wrote its report");
  assert.equal(real.report.dryRun, false);
  assert.deepEqual(await leftovers(s.dir), [], "no mount or loop device left");
  assert.equal(await sha256File(input), sourceHash, "the source image is untouched");

  const check = await qemuCheck(output);
  assert.equal(check.code, 0, `qemu-img check: ${JSON.stringify(check.report)}`);
  const fsck = await fsckRoot(output, s.dir);
  assert.equal(fsck.code, 0, `e2fsck -fn of the output's root filesystem:\n${fsck.output}`);

  const after = await snapshotImage(output, snapState, readPaths);
  const diff = diffManifests(before.manifest, after.manifest);

  // Every planted path as expected.
  const wrong = checkOutcomes(guest.expectations, profile, before, after);
  assert.deepEqual(wrong, [], `planted paths not cleaned as expected (${profile}):\n${wrong.join("\n")}`);

  // What changed is exactly what the report says, and the dry run announced exactly that.
  const problems = reportVersusDiff(real.report.changes, diff);
  assert.deepEqual(
    problems,
    [],
    `report and image disagree (${profile}):\n${problems.join("\n")}\n\nthe diff:\n${describeDiff(diff, 200)}`,
  );
  assert.deepEqual(changeKeys(dry.report.changes), changeKeys(real.report.changes), "dry run = real run");

  // Idempotent: a dry run on the output finds nothing left to do.
  const again = await runClean(s, [...profileArgs, "--dry-run", output], `${profile}-again.json`);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(
    changeKeys(again.report?.changes.filter((c) => c.action !== "zero-free-space") ?? []),
    [],
    "a second clean changes nothing",
  );
  assert.deepEqual(await leftovers(s.dir), []);
}

test(
  "Debian guest, default operations: planted data gone, logs emptied in place, the rest byte-identical",
  { skip, timeout: 600_000 },
  async (t) => {
    const s = await guestScratch(t);
    const guest = await debianGuest("planted");
    t.diagnostic(`guest ${guest.name} (built in ${guest.buildSeconds} s, 0 = cached)`);
    await proveClean(s, guest, "default", []);
  },
);

test(
  "Debian guest, --profile atmosphere: also accounts, homes, Atmosphere blocks and files",
  { skip, timeout: 600_000 },
  async (t) => {
    const s = await guestScratch(t);
    const guest = await debianGuest("planted");
    await proveClean(s, guest, "atmosphere", ["--profile", "atmosphere"]);
  },
);

test(
  "Rocky Linux 9 tree, default operations: ifcfg HWADDR, rpm db files, dnf/yum caches, host keys",
  { skip, timeout: 300_000 },
  async (t) => {
    const s = await guestScratch(t);
    const guest = await rhelGuest();
    await proveClean(s, guest, "default", []);
  },
);

test("Rocky Linux 9 tree, --profile atmosphere", { skip, timeout: 300_000 }, async (t) => {
  const s = await guestScratch(t);
  const guest = await rhelGuest();
  await proveClean(s, guest, "atmosphere", ["--profile", "atmosphere"]);
});
