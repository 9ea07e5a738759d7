/**
 * The check of an AMI before it is read: product codes (AWS Marketplace), instance-store images, images not
 * available, and boot modes the destination cannot boot — each refused naming the AMI and the reason.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { amiFirmware, amiReadProblems, checkAmiReadable } from "../../../src/providers/aws/ami-read-check.js";
import type { Ec2Image } from "../../../src/providers/ec2/ec2-records.js";

const ami: Ec2Image = {
  id: "ami-0123456789abcdef0",
  name: "debian-12",
  state: "available",
  public: false,
  architecture: "x86_64",
  rootDeviceType: "ebs",
  rootDeviceName: "/dev/xvda",
  blockDeviceMappings: [{ deviceName: "/dev/xvda", snapshotId: "snap-0123456789abcdef0", volumeSizeGiB: 8 }],
};

test("an available EBS AMI without product codes passes both read paths", () => {
  assert.deepEqual(amiReadProblems(ami, { path: "ebs-direct", destinationFirmware: ["legacy-bios"] }), []);
  assert.doesNotThrow(() => checkAmiReadable(ami, { path: "export-image" }));
});

test("a Marketplace AMI is refused with the product code and what refuses it", () => {
  const sold = { ...ami, productCodes: [{ id: "cx1a2b3c4d5e6f7g8h9i0j", type: "marketplace" }] };
  assert.throws(() => checkAmiReadable(sold, { path: "ebs-direct" }), {
    code: "EUNSUPPORTED",
    message:
      'AMI ami-0123456789abcdef0 ("debian-12") cannot be read: it carries product code cx1a2b3c4d5e6f7g8h9i0j ' +
      "(marketplace): its snapshots belong to the AWS Marketplace seller and are not shared, so the EBS direct " +
      "APIs cannot read them",
  });
  assert.throws(() => checkAmiReadable(sold, { path: "export-image" }), {
    message: /ExportImage refuses AWS Marketplace images/,
  });
});

test("boot modes: a UEFI-only AMI to a BIOS destination is refused; uefi-preferred goes anywhere", () => {
  assert.throws(
    () => checkAmiReadable({ ...ami, bootMode: "uefi" }, { path: "ebs-direct", destinationFirmware: ["legacy-bios"] }),
    {
      message: /cannot be read: it boots only with uefi \(boot mode uefi\) and the destination boots legacy-bios$/,
    },
  );
  assert.deepEqual(amiFirmware({ ...ami, bootMode: "uefi-preferred" }), ["uefi", "legacy-bios"]);
  assert.deepEqual(
    amiReadProblems(
      { ...ami, bootMode: "uefi-preferred" },
      { path: "ebs-direct", destinationFirmware: ["legacy-bios"] },
    ),
    [],
  );
  // No boot mode: arm64 boots UEFI, x86 legacy BIOS.
  assert.match(
    amiReadProblems(
      { ...ami, architecture: "arm64" },
      { path: "ebs-direct", destinationFirmware: ["legacy-bios"] },
    )[0]!,
    /no boot mode, so uefi on arm64/,
  );
  assert.equal(amiReadProblems(ami, { path: "ebs-direct", destinationFirmware: ["uefi"] }).length, 1);
});

test("instance-store and unavailable AMIs are refused, every reason listed", () => {
  const problems = amiReadProblems(
    { ...ami, rootDeviceType: "instance-store", state: "pending" },
    { path: "export-image" },
  );
  assert.deepEqual(problems, [
    "it is instance-store backed: it has no snapshot; read its S3 bundle instead",
    "it is pending, not available",
  ]);
});
