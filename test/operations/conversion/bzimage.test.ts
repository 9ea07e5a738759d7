import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { kernelRelease, parseBzImageHeader } from "../../../src/operations/conversion/bzimage.js";
import { runOk, scratch } from "../../helpers/tools.js";
import { debianVersionString, kernelImage } from "./conversion-trees.js";

test("the version string through the header's pointer, as file(1) reads it too", async (t) => {
  const versionString = debianVersionString("6.1.0-18-amd64");
  const image = kernelImage(versionString);
  assert.deepEqual(parseBzImageHeader(image), { protocol: 0x020f, versionString });
  assert.equal(kernelRelease(versionString), "6.1.0-18-amd64");
  const path = join(await scratch(t, "chromo-bzimage-"), "vmlinuz");
  await writeFile(path, image);
  assert.match(
    await runOk("file", ["-b", path]),
    /Linux kernel x86 boot executable bzImage, version 6\.1\.0-18-amd64 /,
  );
});

test("not a bzImage, or no usable version", () => {
  const elf = Buffer.alloc(4096);
  elf.write("\x7fELF", 0, "latin1");
  assert.equal(parseBzImageHeader(elf), null);
  assert.equal(parseBzImageHeader(Buffer.alloc(100)), null);
  assert.equal(parseBzImageHeader(kernelImage("3.0", { protocol: 0x0105 })), null);
  // A pointer past the setup sectors, or to no string, gives no version (never a read past the head).
  assert.equal(parseBzImageHeader(kernelImage("6.1.0", { pointer: 0xff00 }))?.versionString, null);
  assert.equal(parseBzImageHeader(kernelImage("6.1.0", { pointer: 0 }))?.versionString, null);
  assert.equal(parseBzImageHeader(kernelImage("6.1\x01\x02"))?.versionString, null);
  // The release becomes a file name in the guest: nothing but a plain name passes.
  for (const bad of ["../../etc/passwd #1", "/boot/x", "a..b", "", " 6.1"]) assert.equal(kernelRelease(bad), null, bad);
  assert.equal(kernelRelease("2.6.18-398.el5 (mockbuild@builder10.centos.org)"), "2.6.18-398.el5");
});
