/**
 * `chromogenic bootable` on hostile guests, through the CLI (issue 16's bad input): /boot a symbolic-link loop,
 * fstab a FIFO or a 1.5 GiB sparse file, grub.cfg a FIFO, no kernel in the guest and none given. Each is a
 * clear error with nothing under the output's name, or a reported skip; no run hangs, and no host file is read
 * or written. (A /boot/grub linked out of the guest and a filesystem larger than --size are in bootable.test.ts;
 * links out of the guest, loops, FIFOs and huge files met by the Xen edits in
 * test/operations/conversion/hostile-guest.test.ts.)
 *
 * The guests are the cached Xen and bootable Debian guests, edited with debugfs on a copy of the image: nothing
 * is mounted on the host to make them, so no guest path is ever followed there. Needs root (loop devices).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { lstat, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BootableReport } from "../../src/workflows/bootable.js";
import { bareRootOf, bootableDebianGuest } from "../helpers/bootable-debian-guest.js";
import { guestScratch, leftovers, type GuestScratch } from "../helpers/clean-proof.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";
import { runCli, runOk } from "../helpers/tools.js";
import { xenBareExt4Guest } from "../helpers/xen-guests.js";

/** Host files a guest's /boot, /etc/fstab and grub.cfg could be taken for: none may change. */
const HOST_FILES = ["/etc/fstab", "/etc/shadow", "/etc/passwd", "/boot"];

/** A run over a FIFO that blocked would hang here: a bare 512 MiB root takes seconds. */
const RUN_LIMIT_MS = 120_000;

type HostState = readonly (readonly [string, number, number, number] | null)[];

async function hostState(): Promise<HostState> {
  return Promise.all(
    HOST_FILES.map((p) =>
      lstat(p).then(
        (st) => [p, st.ino, st.mtimeMs, st.ctimeMs] as const,
        () => null,
      ),
    ),
  );
}

/** A copy of `disk` in the scratch folder with `edits` applied by debugfs (one command a line). */
async function editedCopy(s: GuestScratch, disk: string, name: string, edits: readonly string[]): Promise<string> {
  const copy = join(s.dir, name);
  await runOk("cp", ["--sparse=always", disk, copy]);
  const script = join(s.dir, `${name}.debugfs`);
  await writeFile(script, edits.join("\n") + "\n");
  await runOk("debugfs", ["-w", "-f", script, copy]);
  await rm(script);
  return copy;
}

/** bootable --json on `args`, checking the host's files and the scratch folder's mounts afterwards. */
async function bootableUntouched(s: GuestScratch, args: readonly string[]) {
  const before = await hostState();
  const started = Date.now();
  const r = await runCli(["bootable", "--json", ...args], s.env, RUN_LIMIT_MS);
  const seconds = (Date.now() - started) / 1000;
  assert.deepEqual(await hostState(), before, "a host file changed");
  assert.deepEqual(await leftovers(s.dir), [], "mounts or loop devices left");
  return { ...r, seconds };
}

/** What the scratch folder holds but for the state dir. */
async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== "state").sort();
}

test("no kernel in the guest and none given: a clear error, nothing under the output's name", async (t) => {
  const guest = await xenBareExt4Guest();
  const s = await guestScratch(t);
  const input = await editedCopy(s, guest.disk, "no-kernel.ext4", []);
  const r = await bootableUntouched(s, [input, join(s.dir, "out.qcow2")]);
  assert.equal(r.code, 1, r.stderr);
  const error = errorOf(r.stdout);
  assert.equal(error.code, "ENOTBOOTABLE");
  assert.match(
    error.message,
    /cannot make this guest boot: the guest has no kernel a PC can boot \(none in \/boot\) and no external kernel/,
  );
  assert.deepEqual(await filesIn(s.dir), ["no-kernel.ext4"]);
});

test("/boot a symbolic-link loop, a kernel given: a clear error, nothing under the output's name", async (t) => {
  const guest = await xenBareExt4Guest();
  const s = await guestScratch(t);
  // The Xen guest's /boot is empty (its kernel is given from outside): the loop stands in its place.
  const input = await editedCopy(s, guest.disk, "boot-loop.ext4", ["rmdir /boot", "symlink /boot boot"]);
  const r = await bootableUntouched(s, [
    "--kernel",
    guest.kernel!,
    "--ramdisk",
    guest.initrd!,
    input,
    join(s.dir, "out.raw"),
  ]);
  assert.equal(r.code, 1, r.stderr);
  const error = errorOf(r.stdout);
  assert.equal(error.code, "EGUESTPATH");
  assert.equal(error.message, "guest path /boot: too many levels of symbolic links");
  assert.deepEqual(await filesIn(s.dir), ["boot-loop.ext4"]);
});

/** A Xen guest whose fstab `edits` spoil, converted with its kernel given: a success whose report says `warning`. */
async function fstabSkipped(t: TestContext, name: string, edits: readonly string[], warning: string) {
  const guest = await xenBareExt4Guest();
  const s = await guestScratch(t);
  const input = await editedCopy(s, guest.disk, name, edits);
  const out = join(s.dir, "out.raw");
  const r = await bootableUntouched(s, ["--kernel", guest.kernel!, "--ramdisk", guest.initrd!, input, out]);
  assert.equal(r.code, 0, r.stderr);
  t.diagnostic(`finished in ${r.seconds.toFixed(1)} s`);
  const report = doneOf(r.stdout, "bootable") as unknown as BootableReport;
  assert.ok(report.warnings.includes(warning), report.warnings.join("\n"));
  assert.deepEqual(await filesIn(s.dir), [name, "out.raw"]);
}

test("fstab a FIFO: the run does not block on it, the edit is a reported skip", async (t) => {
  await fstabSkipped(
    t,
    "fstab-fifo.ext4",
    ["cd /etc", "rm fstab", "mknod fstab p"],
    "fstab-uuid: /etc/fstab: is a fifo, not a regular file; not edited",
  );
});

test("fstab a 1.5 GiB sparse file: never read whole, the edit is a reported skip", async (t) => {
  // debugfs sets the size in the inode: the file reads as its lines followed by 1.5 GiB of a hole.
  const size = 3 * 2 ** 29;
  await fstabSkipped(
    t,
    "fstab-huge.ext4",
    [`sif /etc/fstab size ${size}`],
    `fstab-uuid: /etc/fstab: ${size} bytes, too large to edit as text; left alone`,
  );
});

test("grub.cfg a FIFO: kept aside unopened as the guest's old configuration, a new one written", async (t) => {
  const s = await guestScratch(t);
  const bare = join(s.dir, "root.ext4");
  await bareRootOf((await bootableDebianGuest()).raw, bare);
  const script = join(s.dir, "edits");
  await writeFile(script, ["cd /boot/grub", "rm grub.cfg", "mknod grub.cfg p", ""].join("\n"));
  await runOk("debugfs", ["-w", "-f", script, bare]);
  await rm(script);
  const out = join(s.dir, "out.raw");
  const r = await bootableUntouched(s, [bare, out]);
  assert.equal(r.code, 0, r.stderr);
  const report = doneOf(r.stdout, "bootable") as unknown as BootableReport;
  assert.deepEqual(
    report.changes.map((c) => [c.action, c.path]),
    [
      ["backup", "/boot/grub/grub.cfg"],
      ["copy", "/boot/grub/i386-pc"],
      ["create", "/boot/grub/grub.cfg"],
    ],
  );
  // The FIFO is in the output as the guest's old configuration, the new grub.cfg a regular file.
  const part = join(s.dir, "p1");
  await runOk("dd", [`if=${out}`, `of=${part}`, "bs=1M", "skip=1", "conv=sparse", "status=none"]);
  const grub = await runOk("debugfs", ["-R", "ls -l /boot/grub", part]);
  assert.match(grub, /\b10000 \([0-9]+\).*grub\.cfg\.before-chromogenic/, grub);
  assert.match(grub, /\b100[0-7]{3} \([0-9]+\).*grub\.cfg\s*$/m, grub);
  await rm(part);
  assert.deepEqual(await filesIn(s.dir), ["out.raw", "root.ext4"]);
});
