/**
 * Whether a guest's newest kernel has AWS's ENA driver: a module (maybe compressed) in its module folder, or
 * built in; a kernel with modules but no ENA says no; no kernel says nothing; versions compare numerically.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestHasEnaDriver } from "../../../src/guest/inspect/ena-driver.js";
import type { InstalledKernel } from "../../../src/guest/inspect/boot-files.js";

const ENA = "kernel/drivers/net/ethernet/amazon/ena";

function kernel(version: string): InstalledKernel {
  return { version, kernel: `/boot/vmlinuz-${version}`, initramfs: null };
}

async function tree(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "chromogenic-ena-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

test("an ena.ko.xz module in the newest kernel's folder: yes", async (t) => {
  const root = await tree(t, { [`lib/modules/6.1.0-18-amd64/${ENA}/ena.ko.xz`]: "" });
  assert.equal(await guestHasEnaDriver(root, [kernel("6.1.0-18-amd64")]), true);
});

test("built in (modules.builtin lists it) under /usr/lib/modules: yes", async (t) => {
  const root = await tree(t, {
    "usr/lib/modules/6.8.0-1/modules.builtin":
      "kernel/fs/ext4/ext4.ko\nkernel/drivers/net/ethernet/amazon/ena/ena.ko\n",
  });
  assert.equal(await guestHasEnaDriver(root, [kernel("6.8.0-1")]), true);
});

test("a kernel whose modules have no ENA: no; the newest kernel decides, compared as versions", async (t) => {
  const root = await tree(t, {
    "lib/modules/4.19.0-9/modules.builtin": "kernel/fs/ext4/ext4.ko\n",
    [`lib/modules/4.19.0-9/${ENA}/ena.ko`]: "",
    "lib/modules/4.19.0-10/modules.builtin": "kernel/fs/ext4/ext4.ko\n",
  });
  assert.equal(await guestHasEnaDriver(root, [kernel("4.19.0-9"), kernel("4.19.0-10")]), false, "-10 is newer than -9");
  assert.equal(await guestHasEnaDriver(root, [kernel("4.19.0-9")]), true);
});

test("no kernel in /boot, or no module folder for it: nothing can be told", async (t) => {
  const root = await tree(t, {});
  assert.equal(await guestHasEnaDriver(root, []), undefined);
  assert.equal(await guestHasEnaDriver(root, [kernel("6.1.0-18-amd64")]), undefined);
});
