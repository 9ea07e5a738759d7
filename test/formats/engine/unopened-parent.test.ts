/**
 * A parent image named but not opened (ReferencePolicy parents "name-only", what `info` uses, as qemu-img info
 * does): the child's own metadata describes it, the backing file need not even exist, and a read that would
 * need the parent fails instead of returning zeros it may not hold.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { ReferenceRefusedError } from "../../../src/formats/errors.js";
import { imageInfo } from "../../../src/formats/engine/image-info.js";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { qemuImg, scratch } from "../../helpers/tools.js";

/** A qcow2 whose backing file, gone.qcow2 beside it, has been deleted. */
async function orphan(t: Parameters<typeof scratch>[0]): Promise<{ dir: string; top: string }> {
  const dir = await scratch(t);
  const top = join(dir, "top.qcow2");
  await qemuImg("create", "-q", "-f", "qcow2", join(dir, "gone.qcow2"), "8M");
  await qemuImg("create", "-q", "-f", "qcow2", "-b", join(dir, "gone.qcow2"), "-F", "qcow2", top);
  await rm(join(dir, "gone.qcow2"));
  return { dir, top };
}

test("info names a backing file that does not exist; reading through it fails, naming it", async (t) => {
  const { dir, top } = await orphan(t);
  const info = await imageInfo(top);
  assert.equal(info.kind, "disk");
  assert.equal(info.kind === "disk" && info.backingFile, join(dir, "gone.qcow2"));

  const { source } = await openImage(top, { references: { allowedPaths: [], parents: "name-only" } });
  t.after(() => source.close());
  await assert.rejects(source.read(0, 4096), (e: unknown) => {
    assert.ok(e instanceof ReferenceRefusedError);
    assert.match(e.message, /gone\.qcow2.*only named, not opened/);
    return true;
  });
  const kinds = new Set<string>();
  for await (const e of source.extents()) kinds.add(e.kind);
  assert.ok(kinds.has("unallocated"));
});

test("without the name-only policy the same image is still refused at open, as before", async (t) => {
  const { top } = await orphan(t);
  await assert.rejects(openImage(top), ReferenceRefusedError);
});
