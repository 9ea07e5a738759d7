import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertFile } from "../../src/formats/engine/convert.js";
import { openGuest } from "../../src/guest/guest-session.js";
import { cleanImage } from "../../src/operations/cleaning/clean-image.js";
import { GUEST_UUIDS, debianRootFiles, isRoot, makeGuestDisk } from "../helpers/guest-images.js";
import { pattern, qemuCheck, qemuInfo, run, runOk, sha256File } from "../helpers/tools.js";
import { exists } from "./guest-trees.js";
import { writeFile } from "node:fs/promises";

const skip = !(await isRoot()) ? "needs root (loop devices and mounts)" : false;
const MiB = 2 ** 20;

/** Scratch folder with its own guest state dir; journals left by a failing test are undone first. */
async function cleanScratch(t: { after(fn: () => Promise<void> | void): void }): Promise<string> {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-cleanimg-"));
  process.env.CHROMOGENIC_STATE_DIR = join(dir, "state");
  t.after(async () => {
    await run(process.execPath, ["bin/chromogenic.js", "guest", "cleanup", "--force"]);
    const mounts = await runOk("findmnt", ["--raw", "--noheadings", "--output", "TARGET"]);
    const loops = await runOk("losetup", ["--all"]);
    if (!mounts.includes(dir) && !loops.includes(dir)) await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A one-partition Debian-like guest (ext4 root) with planted data, as qcow2. */
async function makeGuest(dir: string): Promise<string> {
  const raw = join(dir, "guest.raw");
  const scratchDir = await mkdtemp(join(dir, "build-"));
  await makeGuestDisk(
    raw,
    "dos",
    [
      {
        type: "83",
        sizeMiB: 96,
        fs: {
          type: "ext4",
          sizeMiB: 96,
          uuid: GUEST_UUIDS.root,
          files: {
            ...debianRootFiles(`UUID=${GUEST_UUIDS.root} / ext4 errors=remount-ro 0 1\n`),
            "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
            "etc/ssh/ssh_host_rsa_key": "PRIVATE\n",
            "etc/group": "root:x:0:\nalice:x:1000:\nbob:x:1001:\n",
            "etc/shadow": "root:*:1::::::\nalice:!:1::::::\nbob:!:1::::::\n",
            "lib/systemd/system/ssh.service": "[Service]\n",
            "usr/bin/ssh-keygen": "",
            "root/.bash_history": "secret\n",
            "root/.ssh/authorized_keys": "ssh-ed25519 AAAA\n",
            "home/alice/.bash_history": "ls\n",
            "home/bob/notes": "bob's\n",
            "var/log/syslog": "log line\n".repeat(1000),
            "var/log/syslog.1": "old\n",
            "var/lib/cloud/instances/i-1/user-data.txt": "#cloud-config\n",
            "var/lib/cloud/seed/nocloud/meta-data": "instance-id: x\n",
            "tmp/junk": "junk\n",
            "srv/kept.txt": "kept\n",
          },
        },
      },
    ],
    scratchDir,
  );
  // 24 MiB of incompressible data that the default operations remove (a package cache), written through a
  // mount so it occupies real blocks: trimming free space must then shrink the output by about that much.
  const mnt = await mkdtemp(join(dir, "mnt-"));
  await runOk("mount", ["-o", `loop,offset=${MiB}`, raw, mnt]);
  try {
    await runOk("mkdir", ["-p", join(mnt, "var/cache/apt/archives")]);
    await writeFile(join(mnt, "var/cache/apt/archives/big_1.0_amd64.deb"), pattern(24 * MiB, 7));
  } finally {
    await runOk("umount", [mnt]);
  }
  const qcow2 = join(dir, "guest.qcow2");
  await convertFile({ input: raw, output: qcow2, outputFormat: "qcow2" });
  await rm(raw);
  return qcow2;
}

/** e2fsck -fn on the result's root partition (converted to raw, the partition cut out at its offset). */
async function fsckClean(image: string, dir: string): Promise<void> {
  const raw = join(dir, "check.raw");
  await convertFile({ input: image, output: raw, outputFormat: "raw" });
  const part = join(dir, "check.part");
  await runOk("dd", [`if=${raw}`, `of=${part}`, "bs=1M", "skip=1", "count=96", "conv=sparse", "status=none"]);
  const r = await run("e2fsck", ["-fn", part]);
  assert.equal(r.code, 0, `e2fsck -fn: ${r.stdout}${r.stderr}`);
  await rm(raw);
  await rm(part);
}

test(
  "cleanImage qcow2 in → qcow2 out: planted data gone, fsck clean, source unchanged; dry run lists exactly that",
  { skip },
  async (t) => {
    const dir = await cleanScratch(t);
    const source = await makeGuest(dir);
    const before = await sha256File(source);

    const dry = await cleanImage(source, { operations: "defaults,user-account", dryRun: true, workDir: dir });
    assert.equal(dry.dryRun, true);
    assert.equal(await sha256File(source), before);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.endsWith(".qcow2")),
      ["guest.qcow2"],
    );

    const output = join(dir, "clean.qcow2");
    const phases = new Set<string>();
    const report = await cleanImage(source, {
      operations: "defaults,user-account",
      output,
      workDir: dir,
      onEvent: (e) => void (e.event === "phase" && phases.add(e.phase)),
    });
    assert.deepEqual([...phases], ["attach", "clean", "commit"]);
    assert.equal(report.output, output);
    assert.deepEqual(report.guest, { distribution: "debian", family: "debian", version: "12" });
    assert.equal(await sha256File(source), before, "the source image is untouched");
    assert.equal((await qemuCheck(output)).code, 0);
    assert.equal((await qemuInfo(output)).format, "qcow2");
    await fsckClean(output, dir);
    // the dry run planned exactly what the real run did
    assert.deepEqual(dry.changes, report.changes);
    assert.ok(report.changes.length >= 10);

    const guest = await openGuest(output, { readOnly: true, workDir: dir });
    try {
      const r = guest.mounted.root;
      for (const p of [
        "root/.bash_history",
        "root/.ssh",
        "home/alice",
        "home/bob",
        "var/log/syslog.1",
        "var/lib/cloud/instances",
        "tmp/junk",
        "etc/ssh/ssh_host_rsa_key",
        "var/cache/apt/archives/big_1.0_amd64.deb",
      ])
        assert.equal(await exists(join(r, p)), false, p);
      assert.equal(await exists(join(r, "var/lib/cloud/seed/nocloud/meta-data")), true);
      assert.equal(await exists(join(r, "srv/kept.txt")), true);
      assert.equal(await exists(join(r, "etc/systemd/system/chromogenic-ssh-hostkeys.service")), true);
      assert.equal((await import("node:fs/promises").then((f) => f.stat(join(r, "var/log/syslog")))).size, 0);
      assert.equal((await import("node:fs/promises").then((f) => f.stat(join(r, "etc/machine-id")))).size, 0);
    } finally {
      await guest.close();
    }

    // zero-free-space: fstrim through the loop device punches the removed 24 MiB out of the working copy
    const trimmed = join(dir, "trimmed.qcow2");
    const trimReport = await cleanImage(source, {
      operations: "defaults,user-account,zero-free-space",
      output: trimmed,
      workDir: dir,
    });
    assert.ok(trimReport.changes.some((c) => c.action === "zero-free-space" && c.path === "/"));
    const plain = Number((await qemuInfo(output))["actual-size"]);
    const small = Number((await qemuInfo(trimmed))["actual-size"]);
    assert.ok(plain - small > 16 * MiB, `trimmed output ${small} should be well below ${plain}`);
    await fsckClean(trimmed, dir);
    assert.equal(await sha256File(source), before);
  },
);

test("cleanImage refuses bad requests before touching anything", { skip }, async (t) => {
  const dir = await cleanScratch(t);
  const image = join(dir, "missing.qcow2");
  await assert.rejects(cleanImage(image, { output: join(dir, "o.qcow2") }), /does not exist/);
  await writeFile(join(dir, "x.raw"), Buffer.alloc(MiB));
  await assert.rejects(cleanImage(join(dir, "x.raw"), {}), /needs an OUTPUT/);
  await assert.rejects(cleanImage(join(dir, "x.raw"), { output: join(dir, "x.raw") }), /input image itself/);
  await assert.rejects(
    cleanImage(join(dir, "x.raw"), { output: join(dir, "o.raw"), operations: "defaults,nope" }),
    /unknown cleaning operation "nope"/,
  );
  assert.equal(await exists(join(dir, "o.raw")), false);
});

test(
  "cleanImage in place on raw (no copy), and a cancelled run leaves no output and nothing mounted",
  { skip },
  async (t) => {
    const dir = await cleanScratch(t);
    const qcow2 = await makeGuest(dir);
    const raw = join(dir, "guest.raw");
    await convertFile({ input: qcow2, output: raw, outputFormat: "raw" });
    const report = await cleanImage(raw, { inPlace: true, operations: "machine-id,tmp-files" });
    assert.equal(report.output, raw);
    assert.deepEqual(
      report.changes.map((c) => [c.action, c.path]),
      [
        ["remove", "/tmp/junk"],
        ["truncate", "/etc/machine-id"],
      ],
    );
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes("chromogenic-work")),
      [],
      "no working copy was made",
    );
    const guest = await openGuest(raw, { readOnly: true });
    try {
      assert.equal(await exists(join(guest.mounted.root, "tmp/junk")), false);
      assert.equal(
        await exists(join(guest.mounted.root, "root/.bash_history")),
        true,
        "only the selected operations ran",
      );
    } finally {
      await guest.close();
    }
    await fsckClean(raw, dir);

    const controller = new AbortController();
    const output = join(dir, "cancelled.qcow2");
    const cancelled = cleanImage(qcow2, {
      output,
      workDir: dir,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.event === "phase" && e.phase === "clean") controller.abort();
      },
    });
    await assert.rejects(cancelled, /cancelled/);
    assert.equal(await exists(output), false);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes("chromogenic-work") || n.startsWith("cancelled")),
      [],
    );
    const mounts = await runOk("findmnt", ["--raw", "--noheadings", "--output", "TARGET"]);
    assert.ok(!mounts.includes(join(dir, "state")), "nothing left mounted");
  },
);

test("CLI: clean --dry-run --report prints a summary, writes the JSON report and no image", { skip }, async (t) => {
  const dir = await cleanScratch(t);
  const image = await makeGuest(dir);
  const reportPath = join(dir, "report.json");
  const r = await run(process.execPath, [
    "bin/chromogenic.js",
    "clean",
    "--dry-run",
    "--operations",
    "defaults,user-account",
    "--keep-user",
    "bob",
    "--work-dir",
    dir,
    "--report",
    reportPath,
    image,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^dry run \(nothing written\): /);
  assert.match(r.stdout, /^ {2}user-account: would edit 3 \(\d+ B\), would remove 1 \(/m);
  assert.match(r.stdout, /would be freed/);
  const report = JSON.parse(await readFile(reportPath, "utf8")) as { dryRun: boolean; changes: { path: string }[] };
  assert.equal(report.dryRun, true);
  assert.ok(report.changes.some((c) => c.path === "/home/alice"));
  assert.ok(!report.changes.some((c) => c.path === "/home/bob"), "bob is kept");
  assert.deepEqual(
    (await readdir(dir)).filter((n) => /\.(qcow2|raw)$/.test(n)),
    ["guest.qcow2"],
  );
  const both = await run(process.execPath, ["bin/chromogenic.js", "clean", "--dry-run", image, join(dir, "o.qcow2")]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--dry-run writes nothing/);
});
