import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GuestPathError, resolveGuestPath } from "../../src/guest/guest-path.js";
import { readGuestText } from "../../src/guest/guest-files.js";
import { scratch } from "../helpers/tools.js";

/** A guest tree on the host: the resolver needs no mount to be tested. */
async function hostileTree(dir: string): Promise<string> {
  const root = join(dir, "guest");
  await mkdir(join(root, "etc"), { recursive: true });
  await mkdir(join(root, "var/lib"), { recursive: true });
  await writeFile(join(root, "etc/shadow"), "guest shadow\n");
  await writeFile(join(root, "etc/hostname"), "guest\n");
  await symlink("/etc/shadow", join(root, "etc/os-release")); // absolute: the guest's shadow, not the host's
  await symlink("../../../../../../../../../etc", join(root, "var/log")); // a `..` chain past the root
  await symlink("../../..", join(root, "var/lib/up")); // relative, ends at the root
  await symlink("loop-b", join(root, "etc/loop-a"));
  await symlink("loop-a", join(root, "etc/loop-b"));
  await symlink("/etc/hostname", join(root, "etc/dangling-ok"));
  await symlink("hostname/x", join(root, "etc/through-a-file"));
  return root;
}

test("guest symlinks resolve inside the guest root, absolute or `..` chains alike", async (t) => {
  const dir = await scratch(t);
  const root = await hostileTree(dir);
  assert.equal(await resolveGuestPath(root, "/etc/os-release"), join(root, "etc/shadow"));
  assert.equal(await readGuestText(root, "/etc/os-release"), "guest shadow\n");
  assert.equal(await resolveGuestPath(root, "/var/log/hostname"), join(root, "etc/hostname"));
  assert.equal(await resolveGuestPath(root, "/var/lib/up/etc/shadow"), join(root, "etc/shadow"));
  assert.equal(await resolveGuestPath(root, "../../../../etc/passwd"), join(root, "etc/passwd"));
  assert.equal(await resolveGuestPath(root, "/var/log/../../../root/.ssh"), join(root, "root/.ssh"));
  // Not following the last link: the link itself (what cleaning removes or truncates).
  assert.equal(await resolveGuestPath(root, "/etc/os-release", { followLast: false }), join(root, "etc/os-release"));
  assert.equal(await resolveGuestPath(root, "/var/log", { followLast: false }), join(root, "var/log"));
  // Missing components stay as written, under the root.
  assert.equal(await resolveGuestPath(root, "/var/log/new/file"), join(root, "etc/new/file"));
});

test("symlink loops and paths through files are clear errors", async (t) => {
  const dir = await scratch(t);
  const root = await hostileTree(dir);
  await assert.rejects(resolveGuestPath(root, "/etc/loop-a"), GuestPathError);
  await assert.rejects(resolveGuestPath(root, "/etc/through-a-file"), GuestPathError);
  assert.equal(await readGuestText(root, "/etc/loop-a"), null);
});
