/**
 * VM Import/Export's published requirements, checked locally: each rule refuses what its page refuses, with a
 * sentence citing the page (prerequisites.html, limitations-image-importing.html of the VM Import/Export User
 * Guide; API_ImportImage.html; the EBS volume constraints; S3's object size), and a good Debian disk passes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EBS_CONSTRAINTS_PAGE,
  IMPORT_IMAGE_PAGE,
  LIMITATIONS_PAGE,
  PREREQUISITES_PAGE,
  S3_UPLOAD_PAGE,
  checkVmImportable,
  vmImportFormat,
  vmImportProblems,
  type VmImportDisk,
} from "../../../src/providers/aws/vm-import-requirements.js";

const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

const debian: VmImportDisk = {
  diskFormat: "vmdk",
  subformat: "streamOptimized",
  virtualSizeBytes: 8 * GiB,
  fileSizeBytes: 900 * 1024 ** 2,
  partitionTable: "gpt",
  bootMode: "uefi",
  architecture: "amd64",
  os: { type: "linux", distro: "debian", version: "12.5", kernel: "6.1.0-18-amd64" },
  volumeCount: 1,
  encrypted: false,
};

test("a Debian 12 stream-optimized VMDK, or a raw Debian 11 disk, passes", () => {
  assert.deepEqual(vmImportProblems(debian), []);
  assert.deepEqual(
    vmImportProblems({
      diskFormat: "raw",
      virtualSizeBytes: 2 * GiB,
      bootMode: "legacy-bios",
      architecture: "x86_64",
      os: { type: "linux", distro: "debian", version: "11", kernel: "5.10.0-28-amd64" },
    }),
    [],
  );
});

const cases: [string, Partial<VmImportDisk>, RegExp, string][] = [
  ["a qcow2 disk", { diskFormat: "qcow2", subformat: undefined }, /not qcow2/, PREREQUISITES_PAGE],
  [
    "a sparse (not stream-optimized) VMDK",
    { subformat: "monolithicSparse" },
    /VMDK disk only in its streamOptimized form, not monolithicSparse/,
    PREREQUISITES_PAGE,
  ],
  ["a differencing VHD", { diskFormat: "vpc", subformat: "differencing" }, /fixed and dynamic VHD/, PREREQUISITES_PAGE],
  ["an empty disk", { virtualSizeBytes: 0 }, /has no size/, EBS_CONSTRAINTS_PAGE],
  ["a disk over 64 TiB", { virtualSizeBytes: 65 * TiB }, /largest EBS volume, 64 TiB/, EBS_CONSTRAINTS_PAGE],
  [
    "an MBR disk over 2 TiB",
    { partitionTable: "mbr", virtualSizeBytes: 3 * TiB },
    /MBR boot volume is limited to 2 TiB/,
    EBS_CONSTRAINTS_PAGE,
  ],
  ["a file over 5 TiB", { fileSizeBytes: 6 * TiB }, /largest S3 object, 5 TiB/, S3_UPLOAD_PAGE],
  ["boot mode uefi-preferred", { bootMode: "uefi-preferred" }, /not uefi-preferred/, IMPORT_IMAGE_PAGE],
  ["an arm64 guest", { architecture: "aarch64" }, /does not import ARM64/, PREREQUISITES_PAGE],
  ["a ppc64le guest", { architecture: "ppc64le" }, /i386 or x86_64, not ppc64le/, IMPORT_IMAGE_PAGE],
  ["a 32-bit Linux", { architecture: "i686" }, /64-bit Linux only/, PREREQUISITES_PAGE],
  [
    "Debian 13",
    { os: { type: "linux", distro: "debian", version: "13", kernel: "6.12.0-1-amd64" } },
    /does not list debian 13/,
    PREREQUISITES_PAGE,
  ],
  [
    "Debian 12 with another kernel",
    { os: { type: "linux", distro: "debian", version: "12", kernel: "6.10.0-1-amd64" } },
    /kernel 6\.1\.0, and this guest boots 6\.10\.0-1-amd64/,
    PREREQUISITES_PAGE,
  ],
  ["22 volumes", { volumeCount: 22 }, /more than 21 volumes/, LIMITATIONS_PAGE],
  ["encrypted volumes", { encrypted: true }, /encrypted volumes/, LIMITATIONS_PAGE],
];

for (const [name, change, reason, page] of cases) {
  test(`refused: ${name}, citing its page`, () => {
    const problems = vmImportProblems({ ...debian, ...change });
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0]!, reason);
    assert.ok(problems[0]!.includes(page), `${problems[0]} cites ${page}`);
  });
}

test("a distribution whose rows were not read (Ubuntu) is left to AWS; several problems are all listed", () => {
  assert.deepEqual(
    vmImportProblems({ ...debian, os: { type: "linux", distro: "ubuntu", version: "24.04", kernel: "6.8.0" } }),
    [],
  );
  assert.equal(
    vmImportProblems({
      ...debian,
      diskFormat: "vdi",
      subformat: undefined,
      encrypted: true,
      bootMode: "uefi-preferred",
    }).length,
    3,
  );
});

test("chromogenic's format names map to ImportImage's Format values through the format registry", () => {
  assert.equal(vmImportFormat("vpc"), "VHD");
  assert.equal(vmImportFormat("vhd"), "VHD");
  assert.equal(vmImportFormat("vhdx"), "VHDX");
  assert.equal(vmImportFormat("vmdk"), "VMDK");
  assert.equal(vmImportFormat("raw"), "RAW");
  assert.equal(vmImportFormat("ova"), "OVA");
  assert.equal(vmImportFormat("qcow2"), undefined);
  assert.equal(vmImportFormat("vdi"), undefined);
});

test("checkVmImportable names the file and every problem", () => {
  assert.doesNotThrow(() => checkVmImportable(debian, "debian.vmdk"));
  assert.throws(
    () => checkVmImportable({ ...debian, diskFormat: "qcow2", subformat: undefined, encrypted: true }, "/tmp/d.qcow2"),
    {
      code: "EUNSUPPORTED",
      message:
        /^\/tmp\/d\.qcow2 cannot be imported by AWS VM Import: VM Import reads OVA.* not qcow2 .* encrypted volumes/,
    },
  );
});
