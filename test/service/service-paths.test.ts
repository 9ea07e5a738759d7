import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  checkJobPaths,
  jobPaths,
  PathNotAllowedError,
  resolveAllowedFolders,
} from "../../src/service/service-paths.js";

const dir = mkdtempSync(join(tmpdir(), "chromogenic-paths-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const read = join(dir, "read");
const write = join(dir, "write");
mkdirSync(read);
mkdirSync(write);
mkdirSync(join(dir, "outside"));
symlinkSync(write, join(dir, "write-link"));

test("every path a job names is found, with what the job does there", () => {
  const paths = jobPaths({
    kind: "export",
    source: { cloud: "local:/a" },
    destination: { kind: "file", path: "/b/x.ova", format: "ova" },
    bootable: { when: "always", kernel: "/k", ramdisk: "/r" },
    workDir: "/w",
  });
  assert.deepEqual(paths, [
    { field: "source.cloud", path: "/a", access: "read" },
    { field: "destination.path", path: "/b/x.ova", access: "write" },
    { field: "bootable.kernel", path: "/k", access: "read" },
    { field: "bootable.ramdisk", path: "/r", access: "read" },
    { field: "workDir", path: "/w", access: "write" },
  ]);
  assert.deepEqual(
    jobPaths({ kind: "migrate", source: { cloud: "openstack-a" }, destination: { kind: "cloud", cloud: "local:/s" } }),
    [{ field: "destination.cloud", path: "/s", access: "write" }],
  );
});

test("allowed folders are resolved through links; paths inside pass, reads may use write folders", async () => {
  const folders = await resolveAllowedFolders({ read: [read], write: [join(dir, "write-link")] });
  assert.deepEqual(folders.write, [write]);
  const spec = {
    kind: "convert" as const,
    input: join(write, "x.raw"),
    output: join(write, "new", "y.qcow2"),
    format: "qcow2",
  };
  await checkJobPaths(spec, folders);
  await assert.rejects(resolveAllowedFolders({ read: [join(dir, "missing")], write: [] }), /missing/);
  await assert.rejects(resolveAllowedFolders({ read: ["relative"], write: [] }), /not an absolute path/);
});

test("a link out, a link to nothing, `..`, a relative path and NUL are refused", async () => {
  const folders = await resolveAllowedFolders({ read: [read], write: [write] });
  symlinkSync(join(dir, "outside"), join(write, "out-link"));
  symlinkSync(join(dir, "outside", "nothing"), join(write, "dangling"));
  const output = async (path: string) =>
    checkJobPaths({ kind: "convert", input: join(read, "a.raw"), output: path, format: "qcow2" }, folders);
  await assert.rejects(output(join(write, "out-link", "x.qcow2")), PathNotAllowedError);
  await assert.rejects(output(join(write, "dangling")), /link to nothing/);
  await assert.rejects(output(`${write}/../outside/x`), /climbs/);
  await assert.rejects(output("write/x"), /not an absolute path/);
  await assert.rejects(output(join(write, "a\0b")), /NUL/);
  await assert.rejects(output(join(read, "x.qcow2")), /outside the folders jobs may write/);
  await assert.rejects(output(`${write}-sibling/x`), /outside the folders jobs may write/);
});
