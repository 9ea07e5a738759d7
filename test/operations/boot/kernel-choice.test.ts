import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chooseKernel, compareKernelVersions } from "../../../src/operations/boot/kernel-choice.js";
import { scratch } from "../../helpers/tools.js";

test("kernel versions order by their numbers, not their characters", () => {
  const sorted = ["6.1.0-9-amd64", "5.10.0-28-amd64", "6.1.0-18-amd64", "6.1.0-18-amd64+1", "4.19.0-6-amd64"].sort(
    compareKernelVersions,
  );
  assert.deepEqual(sorted, [
    "4.19.0-6-amd64",
    "5.10.0-28-amd64",
    "6.1.0-9-amd64",
    "6.1.0-18-amd64",
    "6.1.0-18-amd64+1",
  ]);
  assert.equal(compareKernelVersions("5.14.0-362.el9.x86_64", "5.14.0-70.el9.x86_64") > 0, true);
});

test("the newest kernel with an initramfs is chosen; links are passed over", async (t) => {
  const root = await scratch(t);
  await mkdir(join(root, "boot"));
  const file = (name: string) => writeFile(join(root, "boot", name), "x");
  await file("vmlinuz-6.1.0-9-amd64");
  await file("initrd.img-6.1.0-9-amd64");
  await file("vmlinuz-6.1.0-18-amd64"); // newest, but no initramfs
  await file("vmlinuz-6.1.0-10-amd64");
  await file("initramfs-6.1.0-10-amd64.img");
  // Newer still, but a link (to a host path, if it were followed from the host).
  await symlink("/etc/hostname", join(root, "boot", "vmlinuz-7.0.0"));
  await file("initrd.img-7.0.0");
  const chosen = await chooseKernel(root);
  assert.deepEqual(chosen, {
    version: "6.1.0-10-amd64",
    kernel: "/boot/vmlinuz-6.1.0-10-amd64",
    initramfs: "/boot/initramfs-6.1.0-10-amd64.img",
  });
});

test("no kernel at all is null", async (t) => {
  const root = await scratch(t);
  await mkdir(join(root, "boot"));
  assert.equal(await chooseKernel(root), null);
});
