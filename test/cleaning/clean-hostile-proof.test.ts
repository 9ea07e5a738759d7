/**
 * Hostile Debian guests through the CLI, end to end. The guest's links point at a host canary directory
 * (absolute, relative, long `..` chains, a directory link, a link loop), a FIFO sits where a log is, a directory
 * where a file is expected, a 16 GiB sparse log, names with newlines; on a second copy /var/log is a link to
 * /etc. The host canary and the host's /etc stay untouched, the run ends (no FIFO hangs it) and either succeeds
 * with a consistent image and report, or fails with one clear line and nothing under OUTPUT.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  fsckRoot,
  guestScratch,
  leftovers,
  reportVersusDiff,
  runClean,
  sha256File,
  snapshotImage,
  type GuestScratch,
  type Snapshot,
} from "../helpers/clean-proof.js";
import { HOST_CANARY_DIR, debianGuest, type DebianVariant } from "../helpers/debian-guest.js";
import { isRoot } from "../helpers/guest-images.js";
import { qemuCheck, runOk } from "../helpers/tools.js";
import { describeDiff, diffManifests, takeManifest, type Manifest } from "../helpers/tree-manifest.js";

const skip = !(await isRoot()) ? "needs root (loop devices and mounts)" : false;

/** Fresh canaries where the hostile guest's links point: files, a log dir, an ssh dir, a cloud dir. */
async function plantHostCanary(): Promise<Manifest> {
  await rm(HOST_CANARY_DIR, { recursive: true, force: true });
  const tag = randomBytes(8).toString("hex");
  for (const [path, content] of [
    ["host.log", `host log ${tag}\n`],
    ["history", `host history ${tag}\n`],
    ["logdir/a.log", `host log dir ${tag}\n`],
    ["ssh/authorized_keys", `host key ${tag}\n`],
    ["cloud/i-host/user-data.txt", `host cloud ${tag}\n`],
    ["sentinel", `${tag}\n`],
  ] as const) {
    await mkdir(join(HOST_CANARY_DIR, path, ".."), { recursive: true });
    await writeFile(join(HOST_CANARY_DIR, path), content);
  }
  return takeManifest(HOST_CANARY_DIR);
}

const HOST_ETC = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hostname", "/etc/hosts", "/etc/fstab"];

async function hostEtcHashes(): Promise<string[]> {
  return Promise.all(HOST_ETC.map((p) => sha256File(p).catch(() => "absent")));
}

async function cleanHostile(
  s: GuestScratch,
  variant: DebianVariant,
): Promise<{ before: Snapshot; after: Snapshot | null; stderr: string }> {
  const guest = await debianGuest(variant);
  const input = join(s.dir, `${variant}.qcow2`);
  await runOk("qemu-img", ["convert", "-O", "qcow2", guest.raw, input]);
  const sourceHash = await sha256File(input);
  const snapState = join(s.dir, "snap-state");
  const before = await snapshotImage(input, snapState);
  const output = join(s.dir, `${variant}-out.qcow2`);

  const r = await runClean(s, [input, output], `${variant}.json`);
  assert.notEqual(r.signal, "SIGKILL", `${variant}: clean hung (killed after the timeout)`);
  assert.deepEqual(await leftovers(s.dir), [], `${variant}: mounts or loop devices left`);
  assert.equal(await sha256File(input), sourceHash, `${variant}: the source changed`);
  if (r.code !== 0) {
    // A refusal is allowed: one clear line, and nothing under OUTPUT nor beside it.
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^chromogenic: .+\n$/, `${variant}: not one clear error line`);
    const files = (await readdir(s.dir)).filter((f) => f.startsWith(`${variant}-out`));
    assert.deepEqual(files, [], `${variant}: a failed clean left an output`);
    return { before, after: null, stderr: r.stderr };
  }
  assert.ok(r.report);
  assert.equal((await qemuCheck(output)).code, 0);
  const fsck = await fsckRoot(output, s.dir);
  assert.equal(fsck.code, 0, fsck.output);
  const after = await snapshotImage(output, snapState);
  const diff = diffManifests(before.manifest, after.manifest);
  const problems = reportVersusDiff(r.report.changes, diff);
  assert.deepEqual(
    problems,
    [],
    `${variant}: report and image disagree:\n${problems.join("\n")}\n${describeDiff(diff)}`,
  );
  return { before, after, stderr: r.stderr };
}

test(
  "hostile guest: links to a host canary, FIFO logs, a directory machine-id, a 16 GiB sparse log, newlines",
  { skip, timeout: 600_000 },
  async (t) => {
    const s = await guestScratch(t);
    const canary = await plantHostCanary();
    t.after(() => rm(HOST_CANARY_DIR, { recursive: true, force: true }));
    const etc = await hostEtcHashes();
    const { before, after } = await cleanHostile(s, "hostile");
    assert.deepEqual(diffManifests(canary, await takeManifest(HOST_CANARY_DIR)), {
      added: [],
      removed: [],
      changed: [],
    });
    assert.deepEqual(await hostEtcHashes(), etc, "the host's /etc is untouched");
    if (!after) return;
    const entry = (m: Snapshot, p: string) => m.manifest.get(p);
    // A guest link is removed or left as it is, never followed and replaced.
    for (const link of [
      "/var/log/abs-link.log",
      "/var/log/rel-link.log",
      "/var/log/dir-link",
      "/var/log/loop-a.log",
      "/root/.bash_history",
      "/home/alice/.ssh",
      "/var/lib/cloud/instances",
      "/tmp/escape",
      "/etc/udev/rules.d/70-persistent-net.rules",
    ]) {
      const a = entry(before, link);
      const b = entry(after, link);
      assert.equal(a?.type, "symlink", `${link} was planted as a link`);
      assert.ok(!b || JSON.stringify(a) === JSON.stringify(b), `${link}: ${JSON.stringify(b)}`);
    }
    for (const fifo of ["/var/log/fifo.log", "/var/log/auth.log"]) {
      const b = entry(after, fifo);
      assert.ok(!b || b.type === "fifo", `${fifo} is still a FIFO or gone, not a file`);
    }
    assert.equal(entry(after, "/var/log/huge.log")?.size, 0, "the huge sparse log is emptied");
    assert.equal(entry(after, "/var/log/new\nline.log")?.size, 0, "a log whose name holds a newline is emptied");
    assert.equal(entry(after, "/etc/machine-id")?.type, "dir", "a directory where machine-id should be is left alone");
    assert.deepEqual(
      entry(after, "/home/alice/.bash_history\nfake"),
      entry(before, "/home/alice/.bash_history\nfake"),
      "a file named like a history plus a newline is not a history",
    );
  },
);

test(
  "hostile guest: /var/log is a link to /etc — neither the host's /etc nor the guest's is emptied",
  { skip, timeout: 600_000 },
  async (t) => {
    const s = await guestScratch(t);
    const etc = await hostEtcHashes();
    const { before, after } = await cleanHostile(s, "varlog-to-etc");
    assert.deepEqual(await hostEtcHashes(), etc, "the host's /etc is untouched");
    if (!after) return;
    for (const p of [
      "/etc/passwd",
      "/etc/shadow",
      "/etc/group",
      "/etc/fstab",
      "/etc/hostname",
      "/etc/sudoers",
      "/etc/os-release",
    ])
      assert.deepEqual(after.manifest.get(p), before.manifest.get(p), `the guest's ${p} is untouched`);
    assert.deepEqual(after.manifest.get("/var/log"), before.manifest.get("/var/log"), "the link itself stays");
  },
);
