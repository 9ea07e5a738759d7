/**
 * An AMI as the workflows see it: its boot mode and architecture in Glance's words (what a migration to
 * OpenStack writes), and back to EC2's when an image is registered.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { awsProviderImage, enaSupportFor } from "../../../src/providers/aws/aws-image.js";
import type { Ec2Image } from "../../../src/providers/ec2/ec2-records.js";

const ami: Ec2Image = {
  id: "ami-0123456789abcdef0",
  name: "graviton",
  state: "available",
  public: false,
  architecture: "arm64",
  rootDeviceType: "ebs",
  rootDeviceName: "/dev/xvda",
  virtualizationType: "hvm",
  bootMode: "uefi",
  blockDeviceMappings: [{ deviceName: "/dev/xvda", snapshotId: "snap-0123456789abcdef0", volumeSizeGiB: 8 }],
};

test("an AMI's architecture and boot mode are given in Glance's words", () => {
  const image = awsProviderImage(ami);
  assert.equal(image.properties.architecture, "aarch64");
  assert.equal(image.properties.hw_firmware_type, "uefi");
  assert.equal(image.sizeBytes, 8 * 1024 ** 3);
  assert.equal(
    awsProviderImage({ ...ami, architecture: "i386", bootMode: "legacy-bios" }).properties.architecture,
    "i686",
  );
  assert.equal(awsProviderImage({ ...ami, bootMode: "uefi-preferred" }).properties.hw_firmware_type, undefined);
  const bundled: Ec2Image = {
    ...ami,
    architecture: "i386",
    rootDeviceType: "instance-store",
    virtualizationType: "paravirtual",
    location: "bucket/old.manifest.xml",
    blockDeviceMappings: [],
  };
  assert.equal(awsProviderImage(bundled).properties.architecture, "i686", "an instance-store AMI's too");
});

test("EnaSupport: what inspecting the guest found, true when nothing was inspected", () => {
  const request = { name: "x", diskFormat: "raw", visibility: "private" as const };
  assert.equal(enaSupportFor(request), true);
  assert.equal(enaSupportFor({ ...request, guest: { ena: false } }), false);
  assert.equal(enaSupportFor({ ...request, guest: { ena: true, firmware: "bios" } }), true);
});
