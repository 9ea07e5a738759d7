/**
 * virt-sysprep's habits in `clean`, each proven through the CLI on a real (small, hand-made) guest disk:
 * every virt-sysprep operation by name and default, the four operations it has that were missing, --enable,
 * --format, -a DISK in place, --keep/--remove-user-accounts, and a dry run that reads the guest read-only
 * (no working copy, no journal left, on read-only storage).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { convertFile } from "../../../src/formats/engine/convert.js";
import { leftovers } from "../../helpers/clean-proof.js";
import { debianRootFiles, isRoot, makeGuestDisk } from "../../helpers/guest-images.js";
import { interruptWhen, whileMounted, type Interrupted } from "../../helpers/interrupt-run.js";
import { makeRaw, qemuCheck, run, runCli, runOk, sha256File } from "../../helpers/tools.js";
import { filesystemUuid, inFilesystem } from "./partition-checks.js";

const skip = !(await isRoot()) ? "needs root (loop devices and mounts)" : false;
const MiB = 2 ** 20;
const ROOT_UUID = "5eed0000-1111-4222-8333-444455556666";

/** A scratch folder with its own state dir; whatever a failing run left is undone before it is removed. */
async function scratchWithState(t: { after(fn: () => Promise<void> | void): void }) {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-sysprep-"));
  const env = { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, "state") };
  t.after(async () => {
    await runCli(["guest", "cleanup", "--force"], env, 120_000);
    const mounts = await runOk("findmnt", ["--raw", "--noheadings", "--output", "TARGET"]);
    for (const target of mounts
      .split("\n")
      .filter((m) => m.startsWith(dir))
      .reverse())
      await run("umount", [target]);
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, env };
}

/** A one-partition raw guest (ext4 root) with what the four new operations and user-account act on. */
async function makeGuest(dir: string, name = "guest.raw"): Promise<string> {
  const raw = join(dir, name);
  const build = await mkdtemp(join(dir, "build-"));
  await makeGuestDisk(
    raw,
    "dos",
    [
      {
        type: "83",
        sizeMiB: 64,
        fs: {
          type: "ext4",
          sizeMiB: 64,
          uuid: ROOT_UUID,
          files: {
            ...debianRootFiles(`UUID=${ROOT_UUID} / ext4 errors=remount-ro 0 1\n`),
            "etc/passwd":
              "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\ncarol:x:1002:1002::/home/carol:/bin/sh\n",
            "etc/group": "root:x:0:\nalice:x:1000:\nbob:x:1001:\ncarol:x:1002:\n",
            "etc/shadow": "root:*:1::::::\nalice:!:1::::::\nbob:!:1::::::\ncarol:!:1::::::\n",
            "home/alice/notes": "a\n",
            "home/bob/notes": "b\n",
            "home/carol/notes": "c\n",
            "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
            "boot/grub/grub.cfg": `search --no-floppy --fs-uuid --set=root ${ROOT_UUID}\nlinux /vmlinuz root=UUID=${ROOT_UUID} ro\n`,
            "etc/pki/tls/certs/localhost.crt": "CERT\n",
            "etc/pki/tls/certs/ca-bundle.crt": "BUNDLE\n",
            "etc/pki/tls/private/localhost.key": "KEY\n",
            "etc/sysconfig/iptables": "*filter\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
            "etc/firewalld/zones/public.xml": "<zone/>\n",
            "etc/firewalld/firewalld.conf": "DefaultZone=public\n",
          },
        },
      },
    ],
    build,
  );
  await rm(build, { recursive: true, force: true });
  return raw;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

test("clean --list-operations: every virt-sysprep operation, by its name, with its default", async () => {
  const ours = await runCli(["clean", "--list-operations", "--json"], process.env);
  assert.equal(ours.code, 0, ours.stderr);
  const listed = (
    JSON.parse(ours.stdout.trim().split("\n").at(-1)!) as { operations: { name: string; default: boolean }[] }
  ).operations;
  const byName = new Map(listed.map((o) => [o.name, o.default]));
  const theirs = await run("virt-sysprep", ["--list-operations"]);
  assert.equal(theirs.code, 0, `virt-sysprep (libguestfs-tools) is needed as the reference: ${theirs.stderr}`);
  const lines = theirs.stdout.trim().split("\n");
  assert.ok(lines.length >= 40, theirs.stdout);
  for (const line of lines) {
    const [name, mark] = line.split(/\s+/);
    assert.ok(byName.has(name!), `virt-sysprep's ${name} is missing`);
    assert.equal(byName.get(name!), mark === "*", `${name}: default differs from virt-sysprep's`);
  }
  for (const name of ["fs-uuids", "ca-certificates", "firewall-rules", "flag-reconfiguration"])
    assert.equal(byName.get(name), false, name);
});

test(
  "clean --enable with the four operations: exactly those run; new root UUID in fstab and grub.cfg; guest still fsck-clean",
  { skip },
  async (t) => {
    const { dir, env } = await scratchWithState(t);
    const source = await makeGuest(dir);
    // A filesystem mounted after its last check, as every used guest's is: tune2fs -U on ext4 with metadata
    // checksums then insists on a fresh e2fsck (mkfs counts as a check, and its clock ticks in seconds).
    await sleep(1100);
    const output = join(dir, "clean.raw");
    const r = await runCli(
      ["clean", "--enable", "fs-uuids,ca-certificates,firewall-rules,flag-reconfiguration", source, output],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const uuid = await filesystemUuid(output);
    assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(uuid, ROOT_UUID);
    assert.equal(await filesystemUuid(source), ROOT_UUID, "the source is not changed");
    await inFilesystem(output, dir, async (root) => {
      assert.equal(await readFile(join(root, "etc/fstab"), "utf8"), `UUID=${uuid} / ext4 errors=remount-ro 0 1\n`);
      const grub = await readFile(join(root, "boot/grub/grub.cfg"), "utf8");
      assert.ok(!grub.includes(ROOT_UUID) && grub.split(uuid).length === 3, grub);
      assert.ok(!(await exists(join(root, "etc/pki/tls/certs/localhost.crt"))));
      assert.ok(!(await exists(join(root, "etc/pki/tls/private/localhost.key"))));
      assert.ok(await exists(join(root, "etc/pki/tls/certs/ca-bundle.crt")), "the CA bundle stays");
      assert.ok(!(await exists(join(root, "etc/sysconfig/iptables"))));
      assert.ok(!(await exists(join(root, "etc/firewalld/zones/public.xml"))));
      assert.ok(await exists(join(root, "etc/firewalld/firewalld.conf")), "firewalld's own configuration stays");
      assert.equal((await stat(join(root, ".unconfigured"))).size, 0);
      // --enable is the exact set: a default operation such as machine-id did not run.
      assert.equal(await readFile(join(root, "etc/machine-id"), "utf8"), "0123456789abcdef0123456789abcdef\n");
    });
    const part = join(dir, "part.raw");
    await runOk("dd", [`if=${output}`, `of=${part}`, "bs=1M", "skip=1", "count=64", "conv=sparse", "status=none"]);
    const fsck = await run("e2fsck", ["-fn", part]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    const bad = await runCli(["clean", "--enable", "defaults", source, join(dir, "x.raw")], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--enable: "defaults" is not a known operation/);
  },
);

test(
  "clean --enable fs-uuids on ext4, XFS and btrfs: each gets a new UUID, fstab follows, each still mounts",
  { skip },
  async (t) => {
    const { dir, env } = await scratchWithState(t);
    const raw = join(dir, "three.raw");
    const build = await mkdtemp(join(dir, "build-"));
    const uuids = { xfs: "0a0a0000-1111-4222-8333-444455556666", btrfs: "0b0b0000-1111-4222-8333-444455556666" };
    const fstab =
      `UUID=${ROOT_UUID} / ext4 defaults 0 1\nUUID=${uuids.xfs} /var/lib/data xfs defaults 0 2\n` +
      `UUID=${uuids.btrfs} /srv btrfs defaults 0 2\n`;
    await makeGuestDisk(
      raw,
      "gpt",
      [
        {
          type: "L",
          sizeMiB: 64,
          fs: {
            type: "ext4",
            sizeMiB: 64,
            uuid: ROOT_UUID,
            files: { ...debianRootFiles(fstab), "var/lib/data": { dir: true } },
          },
        },
        { type: "L", sizeMiB: 300, fs: { type: "xfs", sizeMiB: 300, uuid: uuids.xfs, files: { "data.txt": "x\n" } } },
        {
          type: "L",
          sizeMiB: 128,
          fs: { type: "btrfs", sizeMiB: 128, uuid: uuids.btrfs, files: { "srv.txt": "s\n" } },
        },
      ],
      build,
    );
    await rm(build, { recursive: true, force: true });
    const r = await runCli(["clean", "-a", raw, "--enable", "fs-uuids"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fs-uuids: edit 1, set-uuid 3/);
    const offsets = { root: 2 ** 20, xfs: 65 * 2 ** 20, btrfs: 365 * 2 ** 20 };
    const now = {
      root: await filesystemUuid(raw, offsets.root),
      xfs: await filesystemUuid(raw, offsets.xfs),
      btrfs: await filesystemUuid(raw, offsets.btrfs),
    };
    assert.notEqual(now.root, ROOT_UUID);
    assert.notEqual(now.xfs, uuids.xfs);
    assert.notEqual(now.btrfs, uuids.btrfs);
    await inFilesystem(raw, dir, async (root) => {
      assert.equal(
        await readFile(join(root, "etc/fstab"), "utf8"),
        `UUID=${now.root} / ext4 defaults 0 1\nUUID=${now.xfs} /var/lib/data xfs defaults 0 2\n` +
          `UUID=${now.btrfs} /srv btrfs defaults 0 2\n`,
      );
    });
    await inFilesystem(
      raw,
      dir,
      async (root) => assert.equal(await readFile(join(root, "data.txt"), "utf8"), "x\n"),
      offsets.xfs,
    );
    await inFilesystem(
      raw,
      dir,
      async (root) => assert.equal(await readFile(join(root, "srv.txt"), "utf8"), "s\n"),
      offsets.btrfs,
    );
  },
);

test("clean -a DISK cleans in place (raw directly, qcow2 through a copy renamed over it)", { skip }, async (t) => {
  const { dir, env } = await scratchWithState(t);
  const raw = await makeGuest(dir);
  const r = await runCli(["clean", "-a", raw, "--enable", "machine-id,flag-reconfiguration"], env);
  assert.equal(r.code, 0, r.stderr);
  await inFilesystem(raw, dir, async (root) => {
    assert.equal(await readFile(join(root, "etc/machine-id"), "utf8"), "");
    assert.ok(await exists(join(root, ".unconfigured")));
  });
  const qcow2 = join(dir, "guest.qcow2");
  await convertFile({ input: await makeGuest(dir, "second.raw"), output: qcow2, outputFormat: "qcow2" });
  const before = await sha256File(qcow2);
  const q = await runCli(["clean", "-a", qcow2, "--enable", "machine-id"], env);
  assert.equal(q.code, 0, q.stderr);
  assert.notEqual(await sha256File(qcow2), before);
  assert.equal((await qemuCheck(qcow2)).code, 0);
  const back = join(dir, "back.raw");
  await convertFile({ input: qcow2, output: back, outputFormat: "raw" });
  await inFilesystem(back, dir, async (root) => assert.equal(await readFile(join(root, "etc/machine-id"), "utf8"), ""));
  const both = await runCli(["clean", "-a", raw, raw, join(dir, "out.raw")], env);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /-a DISK cleans DISK in place/);
});

test(
  "clean -a DISK failing part-way: a raw DISK is reported partly cleaned, a qcow2 DISK is left as it was",
  { skip },
  async (t) => {
    const { dir, env } = await scratchWithState(t);
    // A tune2fs that always fails: the device phase, after every file operation, breaks.
    const bin = join(dir, "bin");
    await mkdir(bin);
    await writeFile(join(bin, "tune2fs"), "#!/bin/sh\necho 'tune2fs: simulated failure' >&2\nexit 1\n", {
      mode: 0o755,
    });
    const failing = { ...env, PATH: `${bin}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}` };

    const raw = await makeGuest(dir);
    const r = await runCli(["clean", "-a", raw, "--enable", "machine-id,fs-uuids"], failing);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /simulated failure/);
    assert.match(r.stderr, /was being cleaned in place .* it is now partly cleaned.*finish the change as said above/s);
    const named = /already name ([0-9a-f-]{36})/.exec(r.stderr)?.[1];
    assert.ok(named, r.stderr);
    // Exactly the state the message describes: machine-id emptied, fstab on the new UUID, the filesystem on the old.
    assert.equal(await filesystemUuid(raw), ROOT_UUID);
    await inFilesystem(raw, dir, async (root) => {
      assert.equal(await readFile(join(root, "etc/machine-id"), "utf8"), "");
      assert.match(await readFile(join(root, "etc/fstab"), "utf8"), new RegExp(`^UUID=${named} `));
    });

    const qcow2 = join(dir, "guest.qcow2");
    await convertFile({ input: await makeGuest(dir, "second.raw"), output: qcow2, outputFormat: "qcow2" });
    const before = await sha256File(qcow2);
    const q = await runCli(["clean", "-a", qcow2, "--enable", "machine-id,fs-uuids"], failing);
    assert.equal(q.code, 1, q.stdout);
    assert.doesNotMatch(q.stderr, /partly cleaned/);
    assert.equal(await sha256File(qcow2), before, "the qcow2 is as it was");
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes("chromogenic")),
      [],
      "no working copy left",
    );
  },
);

test("clean --format: the input is read as the format given, as virt-sysprep's --format", { skip }, async (t) => {
  const { dir, env } = await scratchWithState(t);
  const raw = await makeGuest(dir);
  const qcow2 = join(dir, "guest.qcow2");
  await convertFile({ input: raw, output: qcow2, outputFormat: "qcow2" });
  const ok = await runCli(["clean", "--dry-run", "--format", "qcow2", "-a", qcow2, "--enable", "machine-id"], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /machine-id: would truncate 1/);
  // A qcow2 file read as raw is a disk whose first bytes are a qcow2 header: no partition, no guest.
  const asRaw = await runCli(["clean", "--dry-run", "--format", "raw", "-a", qcow2], env);
  assert.equal(asRaw.code, 1, asRaw.stdout);
  assert.match(asRaw.stderr, /filesystem|root/i);
  const auto = await runCli(["clean", "--dry-run", "--format", "auto", "-a", qcow2, "--enable", "machine-id"], env);
  assert.equal(auto.code, 0, auto.stderr);
});

test("clean --keep-user-accounts / --remove-user-accounts: virt-sysprep's semantics", { skip }, async (t) => {
  const { dir, env } = await scratchWithState(t);
  const raw = await makeGuest(dir);
  const r = await runCli(
    [
      "clean",
      "-a",
      raw,
      "--enable",
      "user-account",
      "--remove-user-accounts",
      "alice,bob",
      "--keep-user-accounts",
      "bob",
    ],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  await inFilesystem(raw, dir, async (root) => {
    const users = (await readFile(join(root, "etc/passwd"), "utf8")).split("\n").map((l) => l.split(":")[0]);
    // alice: on the remove list; bob: on both, keeping wins; carol: not on the remove list.
    assert.deepEqual(users.filter(Boolean), ["root", "bob", "carol"]);
    assert.ok(!(await exists(join(root, "home/alice"))));
    assert.ok(await exists(join(root, "home/carol/notes")));
  });
  const unused = await runCli(["clean", "--dry-run", "-a", raw, "--keep-user-accounts", "bob"], env);
  assert.equal(unused.code, 2);
  assert.match(unused.stderr, /--keep-user-accounts was given, but the user-account operation is not selected/);
  const empty = await runCli(
    ["clean", "--dry-run", "-a", raw, "--enable", "user-account", "--remove-user-accounts", "a,,b"],
    env,
  );
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /empty user name/);
});

test(
  "clean --dry-run of a qcow2 on read-only storage: read-only, no working copy, no journal left",
  { skip },
  async (t) => {
    const { dir, env } = await scratchWithState(t);
    const raw = await makeGuest(dir);
    // A small ext4 filesystem holding the image, mounted, then remounted read-only.
    const store = join(dir, "store.ext4");
    await makeRaw(store, 160 * MiB);
    await runOk("mkfs.ext4", ["-q", "-F", store]);
    const mnt = join(dir, "ro");
    await mkdir(mnt);
    await runOk("mount", ["-o", "loop", store, mnt]);
    t.after(async () => void (await run("umount", [mnt])));
    const image = join(mnt, "guest.qcow2");
    await convertFile({ input: raw, output: image, outputFormat: "qcow2" });
    await runOk("mount", ["-o", "remount,ro", mnt]);
    const before = await sha256File(image);
    const listing = await readdir(mnt);

    const r = await runCli(["clean", "--dry-run", "--enable", "machine-id,fs-uuids,user-account", image], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^dry run \(nothing written\): /);
    assert.match(r.stdout, /machine-id: would truncate 1/);
    assert.match(r.stdout, /fs-uuids: would edit 2, would set-uuid 1/);
    assert.equal(await sha256File(image), before);
    assert.deepEqual(await readdir(mnt), listing);
    const state = join(dir, "state");
    assert.deepEqual(await readdir(join(state, "guest-journals")), [], "no journal left");
    assert.deepEqual(await readdir(join(state, "exports")), [], "no export left");
    const loops = await runOk("losetup", ["--all"]);
    assert.ok(!loops.includes(state), loops);
  },
);

test(
  "clean --dry-run of a qcow2 killed with -9: the qemu export goes with it, guest cleanup leaves nothing",
  { skip },
  async (t) => {
    const { dir, env } = await scratchWithState(t);
    const image = join(dir, "guest.qcow2");
    await convertFile({ input: await makeGuest(dir), output: image, outputFormat: "qcow2" });
    let run: Interrupted | null = null;
    for (let attempt = 0; attempt < 5 && !run; attempt++)
      run = await interruptWhen(dir, env, ["clean", "--dry-run", image], "SIGKILL", whileMounted(dir));
    assert.ok(run, "the run was never caught with the guest mounted");
    assert.equal(run.signal, "SIGKILL");
    const exportsDir = join(dir, "state", "exports");
    const daemons = async () => {
      const found: string[] = [];
      for (const pid of await readdir("/proc"))
        if (/^\d+$/.test(pid) && (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).includes(exportsDir))
          found.push(pid);
      return found;
    };
    for (let waited = 0; (await daemons()).length && waited < 5000; waited += 50) await sleep(50);
    assert.deepEqual(await daemons(), [], "the export daemon outlived the run");
    const cleanup = await runCli(["guest", "cleanup"], env);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.deepEqual(await leftovers(dir), [], "mounts or loop devices left");
    assert.deepEqual(await readdir(exportsDir), []);
    assert.deepEqual(await readdir(join(dir, "state", "guest-journals")), []);
  },
);
