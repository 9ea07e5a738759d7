import { test } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { installGrubFiles } from "../../../src/operations/boot/guest-grub-files.js";
import { scratch } from "../../helpers/tools.js";

const CONFIG = "set default=0\n";

test("GRUB's files are written; what the guest had is kept under backup names", async (t) => {
  const root = await scratch(t);
  await mkdir(join(root, "boot", "grub", "i386-pc"), { recursive: true });
  await writeFile(join(root, "boot", "grub", "grub.cfg"), "old config\n");
  await writeFile(join(root, "boot", "grub", "grub.cfg.before-chromogenic"), "older backup\n");
  await writeFile(join(root, "boot", "grub", "i386-pc", "normal.mod"), "old module");

  const planned = await installGrubFiles({ root, grubDir: "/boot/grub", config: CONFIG, dryRun: true });
  assert.deepEqual(await readFile(join(root, "boot", "grub", "grub.cfg"), "utf8"), "old config\n", "dry run");
  const changes = await installGrubFiles({ root, grubDir: "/boot/grub", config: CONFIG, dryRun: false });
  assert.deepEqual(changes, planned, "the dry run reports what the run does");
  assert.deepEqual(
    changes.map((c) => [c.action, c.path]),
    [
      ["backup", "/boot/grub/i386-pc"],
      ["backup", "/boot/grub/grub.cfg"],
      ["copy", "/boot/grub/i386-pc"],
      ["create", "/boot/grub/grub.cfg"],
    ],
  );
  const grub = join(root, "boot", "grub");
  assert.equal(await readFile(join(grub, "grub.cfg"), "utf8"), CONFIG);
  assert.equal(await readFile(join(grub, "grub.cfg.before-chromogenic.2"), "utf8"), "old config\n");
  assert.equal(await readFile(join(grub, "grub.cfg.before-chromogenic"), "utf8"), "older backup\n");
  assert.equal(await readFile(join(grub, "i386-pc.before-chromogenic", "normal.mod"), "utf8"), "old module");
  const modules = await readdir(join(grub, "i386-pc"));
  for (const m of ["normal.mod", "linux.mod", "serial.mod", "moddep.lst", "command.lst"])
    assert.ok(modules.includes(m), m);
});

test("a guest with no /boot/grub gets one", async (t) => {
  const root = await scratch(t);
  await mkdir(join(root, "boot"));
  const changes = await installGrubFiles({ root, grubDir: "/boot/grub", config: CONFIG, dryRun: false });
  assert.deepEqual(changes[0], { path: "/boot/grub", action: "create", detail: "folder" });
  assert.ok((await lstat(join(root, "boot", "grub"))).isDirectory());
});

test("a /boot/grub or /boot that is a link (out of the guest or not) is refused; nothing is written", async (t) => {
  const root = await scratch(t);
  const host = await scratch(t, "chromo-host-");
  await writeFile(join(host, "grub.cfg"), "host file\n");
  await mkdir(join(root, "boot"));
  await symlink(host, join(root, "boot", "grub"));
  await assert.rejects(
    installGrubFiles({ root, grubDir: "/boot/grub", config: CONFIG, dryRun: false }),
    (e: Error & { code?: string }) => e.code === "ENOTBOOTABLE" && /\/boot\/grub is a symbolic link/.test(e.message),
  );
  assert.deepEqual(await readdir(host), ["grub.cfg"]);
  assert.equal(await readFile(join(host, "grub.cfg"), "utf8"), "host file\n");
  assert.equal(await readlink(join(root, "boot", "grub")), host);

  const other = await scratch(t);
  await mkdir(join(other, "realboot"));
  await symlink("realboot", join(other, "boot"));
  await assert.rejects(
    installGrubFiles({ root: other, grubDir: "/boot/grub", config: CONFIG, dryRun: true }),
    /\/boot is a symbolic link/,
  );
});
