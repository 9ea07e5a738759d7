/**
 * RegisterImage gained AWS's fields (boot mode, ENA, IMDSv2, volume type and size of the root): requests that do
 * not ask for them must be the ones Eucalyptus and OpenStack's ec2-api have always been sent — the same
 * parameters in the same order — since those servers are tested against in CI and not here. Recorded with the
 * canned-reply server of test/helpers/fake-ec2.ts; the expected lists are what main sent before the change.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { registerImage } from "../../../src/providers/ec2/ec2-images.js";
import { ec2Reply, fakeEc2 } from "../../helpers/fake-ec2.js";

const sent = (params: URLSearchParams) => [...params].filter(([k]) => k !== "Version");

test("an instance-store RegisterImage sends exactly the parameters it always did", async (t) => {
  const { ec2, requests } = await fakeEc2(t, () => ec2Reply("RegisterImage", "<imageId>emi-99999999</imageId>"));
  await registerImage(ec2, {
    manifestLocation: "my-bucket/debian.img.manifest.xml",
    name: "debian",
    description: "a bundle",
    architecture: "x86_64",
    kernelId: "eki-11111111",
    ramdiskId: "eri-22222222",
    rootDeviceName: "/dev/sda1",
    virtualizationType: "paravirtual",
    blockDeviceMappings: [{ deviceName: "/dev/sda2", virtualName: "ephemeral0" }],
  });
  assert.deepEqual(sent(requests[0]!.params), [
    ["Action", "RegisterImage"],
    ["Name", "debian"],
    ["ImageLocation", "my-bucket/debian.img.manifest.xml"],
    ["Description", "a bundle"],
    ["Architecture", "x86_64"],
    ["KernelId", "eki-11111111"],
    ["RamdiskId", "eri-22222222"],
    ["RootDeviceName", "/dev/sda1"],
    ["BlockDeviceMapping.1.DeviceName", "/dev/sda2"],
    ["BlockDeviceMapping.1.VirtualName", "ephemeral0"],
    ["VirtualizationType", "paravirtual"],
  ]);
});

test("an EBS RegisterImage without AWS's fields sends no BootMode, EnaSupport, ImdsSupport or VolumeType", async (t) => {
  const { ec2, requests } = await fakeEc2(t, () => ec2Reply("RegisterImage", "<imageId>emi-88888888</imageId>"));
  await registerImage(ec2, { snapshotId: "snap-12345678", rootDeviceName: "/dev/sda", name: "from-snap" });
  assert.deepEqual(sent(requests[0]!.params), [
    ["Action", "RegisterImage"],
    ["Name", "from-snap"],
    ["RootDeviceName", "/dev/sda"],
    ["BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"],
    ["BlockDeviceMapping.1.Ebs.SnapshotId", "snap-12345678"],
    ["BlockDeviceMapping.1.DeviceName", "/dev/sda"],
  ]);
});
