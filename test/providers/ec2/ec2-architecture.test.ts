/**
 * EC2's and Glance's words for an architecture, both ways, and which source wins: the guest's own programs
 * over the metadata, x86_64 when neither tells.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { architectureFor, glanceArchitectureOf } from "../../../src/providers/ec2/ec2-architecture.js";
import { providerImageOf } from "../../../src/providers/eucalyptus/eucalyptus-image.js";

test("Glance's words go back to EC2's unchanged for every EC2 architecture", () => {
  for (const ec2 of ["x86_64", "arm64", "i386"]) {
    assert.equal(architectureFor({ architecture: glanceArchitectureOf(ec2) }), ec2);
  }
  assert.equal(glanceArchitectureOf("x86_64_mac"), "x86_64_mac", "one EC2 does not list is kept as given");
});

test("the inspected guest wins over the metadata; 'unknown' leaves the metadata; x86_64 by default", () => {
  assert.equal(architectureFor({ architecture: "x86_64" }, "aarch64"), "arm64");
  assert.equal(architectureFor({ architecture: "i686" }, "unknown"), "i386");
  assert.equal(architectureFor(undefined), "x86_64");
  assert.equal(architectureFor({}, undefined), "x86_64");
  assert.throws(() => architectureFor({ architecture: "ppc64le" }), /no EC2 equivalent/);
});

test("an EC2-family image read from Eucalyptus or AWS names its architecture in Glance's words", () => {
  const image = providerImageOf({
    id: "emi-1",
    name: "i386 guest",
    state: "available",
    architecture: "i386",
    imageType: "machine",
    rootDeviceType: "instance-store",
    blockDeviceMappings: [],
    public: false,
    tags: {},
  } as unknown as Parameters<typeof providerImageOf>[0]);
  assert.equal(image.properties.architecture, "i686");
});
