/**
 * What the import path tells VM Import's requirements about a disk (the requirements themselves are tested in
 * vm-import-requirements.test.ts), and the upload addresses a job may ask the store to delete. The import
 * itself is tested through the CLI in test/workflows/aws-vm-import-export.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  IMPORT_PREFIX,
  parseUploadLocation,
  uploadLocation,
  vmImportDiskOf,
} from "../../../src/providers/aws/ami-import-write.js";
import { vmImportProblems } from "../../../src/providers/aws/vm-import-requirements.js";

const GIB = 1024 ** 3;

test("a raw disk with both loaders is left to VM Import's choice of boot mode; one loader is asked for", () => {
  const both = vmImportDiskOf({ name: "d", diskFormat: "raw", sizeBytes: 8 * GIB, guest: { firmware: "both" } });
  assert.deepEqual(both, { diskFormat: "raw", virtualSizeBytes: 8 * GIB, fileSizeBytes: 8 * GIB });
  assert.deepEqual(vmImportProblems(both), []);
  const uefi = vmImportDiskOf({ name: "d", diskFormat: "raw", sizeBytes: GIB, guest: { firmware: "uefi" } });
  assert.equal(uefi.bootMode, "uefi");
  const said = vmImportDiskOf({
    name: "d",
    diskFormat: "raw",
    sizeBytes: GIB,
    properties: { hw_firmware_type: "bios" },
  });
  assert.equal(said.bootMode, "legacy-bios");
});

test("Glance-style properties name the architecture and distribution VM Import judges", () => {
  const old = vmImportDiskOf({
    name: "d",
    diskFormat: "raw",
    sizeBytes: GIB,
    properties: { architecture: "x86_64", os_distro: "debian", os_version: "9" },
  });
  assert.deepEqual(old.os, { type: "linux", distro: "debian", version: "9" });
  assert.match(vmImportProblems(old).join(" "), /does not list debian 9/);
  const arm = vmImportDiskOf({ name: "d", diskFormat: "raw", sizeBytes: GIB, properties: { architecture: "aarch64" } });
  assert.match(vmImportProblems(arm).join(" "), /ARM64/);
  const windows = vmImportDiskOf({
    name: "d",
    diskFormat: "raw",
    sizeBytes: GIB,
    properties: { os_distro: "windows" },
  });
  assert.equal(windows.os?.type, "windows");
});

test("only an upload this path makes is taken as an address to delete", () => {
  const key = `${IMPORT_PREFIX}disk-0123456789ab.raw`;
  assert.deepEqual(parseUploadLocation(uploadLocation("b", key)), { bucket: "b", key });
  assert.equal(parseUploadLocation("s3://b/other/disk.raw"), undefined);
  assert.equal(parseUploadLocation(`s3://b/${IMPORT_PREFIX}../x`), undefined);
  assert.equal(parseUploadLocation("ami-0123456789abcdef0"), undefined);
});
