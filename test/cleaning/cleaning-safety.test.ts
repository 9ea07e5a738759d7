import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chown, link, lstat, mkdir, readFile, readdir, stat, truncate, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { planCleaning, runCleaning } from "../../src/operations/cleaning/run-cleaning.js";
import { scratch } from "../helpers/tools.js";
import { debianTree, exists, rhelTree, treeHash, writeTree, type TreeSpec } from "./guest-trees.js";

const isRoot = process.getuid?.() === 0;

async function clean(root: string, operations: string, dryRun = false, profile?: string) {
  return runCleaning(root, await planCleaning({ operations, profile }), { dryRun });
}

test("logs are emptied in place: same inode, mode, owner and user.* xattr kept", async (t) => {
  const dir = await scratch(t, "chromo-clean-");
  const root = join(dir, "root");
  await writeTree(root, {
    "etc/os-release": "ID=debian\n",
    "var/log/syslog": { content: "x".repeat(100_000), mode: 0o640 },
  });
  const log = join(root, "var/log/syslog");
  if (isRoot) await chown(log, 4, 4);
  execFileSync("setfattr", ["-n", "user.chromogenic", "-v", "kept", log]);
  const before = await stat(log);
  const run = await clean(root, "logfiles");
  const after = await stat(log);
  assert.equal(after.size, 0);
  assert.equal(after.ino, before.ino);
  assert.equal(after.mode, before.mode);
  assert.equal(after.uid, before.uid);
  assert.equal(after.gid, before.gid);
  if (isRoot) assert.deepEqual([after.uid, after.gid], [4, 4]);
  assert.match(execFileSync("getfattr", ["-n", "user.chromogenic", "--only-values", log]).toString(), /^kept$/);
  assert.deepEqual(
    run.changes.map((c) => [c.action, c.path, c.detail]),
    [["truncate", "/var/log/syslog", "emptied 100000 bytes"]],
  );
  assert.ok((run.changes[0]!.bytes ?? 0) >= 100_000);
});

test("hostile guest: symlinks to a host canary (absolute, relative, .. chains), FIFOs, folders for files, 100 GiB sparse log, newlines in names", async (t) => {
  const dir = await scratch(t, "chromo-clean-");
  const root = join(dir, "root");
  const canary = join(dir, "canary.txt");
  const canaryDir = join(dir, "host-folder");
  await writeFile(canary, "canary\n");
  await mkdir(canaryDir);
  await writeFile(join(canaryDir, "precious"), "host data\n");
  const up = "../".repeat(20);
  const base: Record<string, unknown> = { ...debianTree() };
  for (const k of Object.keys(base))
    if (["root/.ssh/", "home/alice/", "var/lib/postgresql/", "var/lib/cloud/instances/"].some((p) => k.startsWith(p)))
      delete base[k];
  const spec: TreeSpec = {
    ...(base as TreeSpec),
    "etc/passwd": `root:x:0:0:root:/root:/bin/bash\npostgres:x:110:118::/var/lib/postgresql:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nmallory:x:1005:1005::/home/${up}${relative("/", canaryDir)}:/bin/sh\n`,
    "var/log/abs.log": { link: canary },
    "var/log/rel.log": { link: `${up}${relative("/", canary)}` },
    "var/log/fifo.log": { fifo: true },
    "var/log/huge.log": "",
    "var/log/a\nb.log": "newline in the name\n",
    "etc/machine-id": { link: canary },
    "etc/ssh/sshd_config": { fifo: true },
    "run/utmp": { dir: true },
    "root/.bash_history": { link: canary },
    "root/.ssh": { link: canaryDir },
    "home/alice": { link: `${up}${relative("/", canaryDir)}` },
    "etc/cloud/cloud.cfg": { link: `../..${canary}` },
    "tmp/x\ny": "newline\n",
    "var/lib/postgresql": { link: "/var/lib/postgresql" },
    "var/spool/abrt": { link: "abrt" },
    "var/lib/cloud/instances": { link: canaryDir },
  };
  await writeTree(root, spec);
  await truncate(join(root, "var/log/huge.log"), 100 * 2 ** 30);
  // a hard link to a host file (possible only because this guest is a folder on the host's filesystem)
  const linkedCanary = join(dir, "linked-canary.txt");
  await writeFile(linkedCanary, "linked canary\n");
  await link(linkedCanary, join(root, "var/log/linked.log"));
  // a character device where a log should be (mknod needs root): never opened
  if (isRoot) execFileSync("mknod", [join(root, "var/log/device.log"), "c", "1", "3"]);
  const started = Date.now();
  const run = await clean(root, "all,-zero-free-space", false, "atmosphere");
  assert.ok(Date.now() - started < 20_000, "nothing blocked or read the sparse log");
  // the host is untouched
  assert.equal(await readFile(canary, "utf8"), "canary\n");
  assert.deepEqual(await readdir(canaryDir), ["precious"]);
  assert.equal(await readFile(join(canaryDir, "precious"), "utf8"), "host data\n");
  // links in the guest were removed as links, or left alone when they stood where a file was to be changed
  assert.equal(await exists(join(root, "root/.bash_history")), false);
  assert.equal(await exists(join(root, "root/.ssh")), false);
  assert.equal(await exists(join(root, "var/lib/cloud/instances")), false);
  assert.ok((await lstat(join(root, "etc/machine-id"))).isSymbolicLink());
  assert.ok((await lstat(join(root, "var/log/fifo.log"))).isFIFO());
  assert.ok((await lstat(join(root, "etc/ssh/sshd_config"))).isFIFO());
  assert.ok((await lstat(join(root, "run/utmp"))).isDirectory());
  assert.equal((await stat(join(root, "var/log/huge.log"))).size, 0);
  assert.equal(await readFile(linkedCanary, "utf8"), "linked canary\n");
  if (isRoot) assert.ok((await lstat(join(root, "var/log/device.log"))).isCharacterDevice());
  assert.equal((await stat(join(root, "var/log/a\nb.log"))).size, 0);
  assert.equal(await exists(join(root, "tmp/x\ny")), false);
  const warnings = run.warnings.join("\n");
  assert.match(warnings, /\/var\/log\/fifo\.log: is not a regular file/);
  assert.match(warnings, /\/etc\/machine-id: is a symlink, not a regular file; not emptied/);
  assert.match(warnings, /\/etc\/ssh\/sshd_config: is a fifo, not a regular file; not edited/);
  assert.match(warnings, /\/run\/utmp: is a directory, not a regular file; not emptied/);
  assert.match(warnings, /\/var\/log\/linked\.log: has 2 hard links/);
  assert.match(
    warnings,
    /guest path \/var\/lib\/postgresql\/\.bash_history: too many levels of symbolic links; left alone/,
  );
  assert.match(warnings, /guest path \/var\/spool\/abrt: too many levels of symbolic links/);
  assert.equal(new Set(run.warnings).size, run.warnings.length);
  if (isRoot) assert.match(warnings, /\/var\/log\/device\.log: is not a regular file/);
  // every reported path is a guest path
  for (const c of run.changes) assert.ok(!c.path.startsWith(dir), c.path);
});

test("a guest whose /var/log is a symlink to /etc: not followed, the guest's /etc is not emptied", async (t) => {
  const dir = await scratch(t, "chromo-clean-");
  const root = join(dir, "root");
  const spec: Record<string, unknown> = { ...debianTree() };
  for (const k of Object.keys(spec)) if (k.startsWith("var/log/")) delete spec[k];
  spec["var/log"] = { link: "/etc" };
  await writeTree(root, spec as TreeSpec);
  const passwd = await readFile(join(root, "etc/passwd"), "utf8");
  const run = await clean(root, "logfiles");
  assert.equal(await readFile(join(root, "etc/passwd"), "utf8"), passwd);
  assert.equal(run.changes.length, 0);
  assert.match(run.warnings.join("\n"), /\/var\/log: is a symlink to \/etc; not followed/);
});

for (const [name, spec] of [
  ["Debian", debianTree()],
  ["RHEL", rhelTree()],
] as const) {
  test(`${name} tree: a dry run changes nothing and lists exactly what the real run then does; a second run changes nothing`, async (t) => {
    const dir = await scratch(t, "chromo-clean-");
    const root = join(dir, "root");
    await writeTree(root, spec);
    const before = await treeHash(root);
    const dry = await clean(root, "all,-zero-free-space", true, "atmosphere");
    assert.deepEqual(await treeHash(root), before, "the dry run wrote nothing");
    assert.ok(dry.changes.length > 15);
    const real = await clean(root, "all,-zero-free-space", false, "atmosphere");
    assert.deepEqual(real.changes, dry.changes);
    assert.deepEqual(real.warnings, dry.warnings);
    const cleaned = await treeHash(root);
    assert.notDeepEqual(cleaned, before);
    const again = await clean(root, "all,-zero-free-space", false, "atmosphere");
    assert.deepEqual(again.changes, [], "idempotent: nothing left to change");
    assert.deepEqual(await treeHash(root), cleaned, "files byte-identical after the second run");
  });
}
