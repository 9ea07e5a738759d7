/**
 * Undoing a journalled file or folder that was never made, on a read-only filesystem: the removal fails with
 * EROFS there, not ENOENT, and must still count as done — a `bootable` whose output folder is read-only used to
 * end in "could not undo everything" and a journal kept, hiding the real error. Needs root (mounts a tmpfs).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GuestJournal } from "../../../src/guest/journal/guest-journal.js";
import { runOk } from "../../helpers/tools.js";

test("a file or folder never made on a read-only filesystem is undone; one that is there still fails", async (t) => {
  assert.equal(process.getuid?.(), 0, "needs root: mounts a read-only tmpfs");
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-undo-"));
  const previous = process.env.CHROMOGENIC_STATE_DIR;
  process.env.CHROMOGENIC_STATE_DIR = join(dir, "state");
  const ro = join(dir, "ro");
  await mkdir(ro);
  await runOk("mount", ["-t", "tmpfs", "tmpfs", ro]);
  t.after(async () => {
    await runOk("umount", [ro]).catch(() => undefined);
    process.env.CHROMOGENIC_STATE_DIR = previous;
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(ro, "present"), "x");
  await runOk("mount", ["-o", "remount,ro", ro]);

  const journal = await GuestJournal.create();
  await journal.record({ kind: "directory", path: join(ro, "never-made") });
  await journal.record({ kind: "file", path: join(ro, "never-made.raw") });
  await journal.undoAll();
  assert.deepEqual(await GuestJournal.list(), [], "nothing left to undo, the journal removed");

  const kept = await GuestJournal.create();
  await kept.record({ kind: "file", path: join(ro, "present") });
  await assert.rejects(kept.undoAll(), /could not undo everything .*read-only file system/);
});
