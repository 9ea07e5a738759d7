/**
 * The proofs are only as good as their instruments: the tree manifest must see every kind of change (content
 * of the same size, mode, owner, xattr, link target, type) without following links, survive names with
 * newlines, and the report check must catch an unreported change, a change reported but not made, and a change
 * of the wrong kind. Runs on a scratch directory; no image needed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, lchown, mkdir, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { checkOutcome, reportVersusDiff, type Snapshot } from "../helpers/clean-proof.js";
import { diffManifests, takeManifest } from "../helpers/tree-manifest.js";
import { runOk, scratch } from "../helpers/tools.js";

async function tree(root: string): Promise<void> {
  await mkdir(join(root, "etc"), { recursive: true });
  await mkdir(join(root, "var/log/app"), { recursive: true });
  await writeFile(join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  await writeFile(join(root, "etc/same-size"), "aaaa\n");
  await writeFile(join(root, "var/log/app/app.log"), "a log line\n");
  await writeFile(join(root, "var/log/new\nline.log"), "x\n");
  await symlink("/etc", join(root, "escape")); // the host's /etc: must be recorded as a link, never walked
  await symlink("../etc/passwd", join(root, "var/rel"));
}

test("the manifest records links without following them and sees every kind of change", async (t) => {
  const dir = await scratch(t, "chromo-manifest-");
  const root = join(dir, "root");
  await tree(root);
  const xattrs = (
    await runOk("sh", ["-c", `setfattr -n user.t -v 1 '${root}/etc/passwd' && echo ok || true`])
  ).includes("ok");
  const before = await takeManifest(root);
  assert.equal(before.get("/escape")?.type, "symlink");
  assert.equal(before.get("/escape")?.linkTarget, "/etc");
  assert.ok(![...before.keys()].some((p) => p.startsWith("/escape/")), "a link to a directory is not walked");
  assert.equal(before.get("/var/log/new\nline.log")?.size, 2);
  if (xattrs) assert.deepEqual(before.get("/etc/passwd")?.xattrs, { "user.t": "0x31" });

  await writeFile(join(root, "etc/same-size"), "bbbb\n");
  await chmod(join(root, "var/log/app/app.log"), 0o600);
  await lchown(join(root, "etc/passwd"), 1, 1);
  if (xattrs) await runOk("setfattr", ["-x", "user.t", join(root, "etc/passwd")]);
  await rm(join(root, "var/rel"));
  await symlink("../etc/same-size", join(root, "var/rel"));
  await truncate(join(root, "var/log/new\nline.log"), 0);
  await rm(join(root, "var/log/app"), { recursive: true });
  await writeFile(join(root, "var/log/app"), "now a file\n");
  const diff = diffManifests(before, await takeManifest(root));
  const fields = Object.fromEntries(diff.changed.map((c) => [c.path, c.fields.join(",")]));
  assert.equal(fields["/etc/same-size"], "sha256");
  assert.equal(fields["/etc/passwd"], xattrs ? "uid,gid,xattrs" : "uid,gid");
  assert.equal(fields["/var/rel"], "linkTarget");
  assert.equal(fields["/var/log/new\nline.log"], "size,sha256");
  assert.equal(fields["/var/log/app"], "type,mode,size,sha256");
  assert.deepEqual(diff.removed, ["/var/log/app/app.log"]);
});

test("the report check catches unreported, phantom and mislabelled changes; a removed folder covers its contents", async (t) => {
  const dir = await scratch(t, "chromo-manifest-");
  const root = join(dir, "root");
  await tree(root);
  const before = await takeManifest(root);
  await rm(join(root, "var/log/app"), { recursive: true });
  await truncate(join(root, "etc/passwd"), 0);
  const diff = diffManifests(before, await takeManifest(root));

  const exact = [
    { operation: "logfiles", action: "remove", path: "/var/log/app" },
    { operation: "x", action: "truncate", path: "/etc/passwd" },
  ] as const;
  assert.deepEqual(reportVersusDiff(exact, diff), []);
  assert.equal(reportVersusDiff(exact.slice(0, 1), diff).length, 1, "the truncation is not reported");
  const phantom = [...exact, { operation: "y", action: "remove", path: "/etc/same-size" } as const];
  assert.match(reportVersusDiff(phantom, diff).join(), /reported remove of "\/etc\/same-size".*none/);
  const mislabelled = [exact[0], { operation: "x", action: "remove", path: "/etc/passwd" } as const];
  assert.match(reportVersusDiff(mislabelled, diff).join(), /reported remove of "\/etc\/passwd".*changed/);
});

test("outcome checks: an emptied log must keep mode and owner; kept means identical; content is exact", async (t) => {
  const dir = await scratch(t, "chromo-manifest-");
  const root = join(dir, "root");
  await tree(root);
  const before: Snapshot = { manifest: await takeManifest(root), contents: new Map() };
  await truncate(join(root, "var/log/app/app.log"), 0);
  await chmod(join(root, "var/log/app/app.log"), 0o666);
  await writeFile(join(root, "etc/same-size"), "cccc\n");
  const after: Snapshot = {
    manifest: await takeManifest(root),
    contents: new Map([["/etc/passwd", "root:x:0:0::/root:/bin/sh\n"]]),
  };
  assert.match(checkOutcome("/var/log/app/app.log", "emptied", before, after) ?? "", /mode\/owner\/xattrs changed/);
  assert.equal(checkOutcome("/var/log/app/app.log", "gone", before, after), null);
  assert.match(checkOutcome("/etc/same-size", "kept", before, after) ?? "", /expected unchanged/);
  assert.match(checkOutcome("/etc/same-size", "removed", before, after) ?? "", /expected removed/);
  assert.equal(checkOutcome("/etc/passwd", { content: "root:x:0:0::/root:/bin/sh\n" }, before, after), null);
  assert.match(checkOutcome("/etc/passwd", { content: "other\n" }, before, after) ?? "", /content differs/);
  assert.match(
    checkOutcome("/etc/passwd", { without: ["root:x:0:0::/root:/bin/sh"] }, before, after) ?? "",
    /should be gone/,
  );
});
