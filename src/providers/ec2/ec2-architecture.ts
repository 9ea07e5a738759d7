/**
 * EC2's words for a machine architecture (i386, x86_64, arm64) and Glance's (libosinfo's: i686, x86_64, aarch64,
 * which Nova's scheduler matches hosts by), both ways, for every EC2-family store: an AMI or EMI copied to
 * OpenStack says `aarch64` as Glance images of ARM guests do, and a Glance image copied to AWS or Eucalyptus
 * registers as `arm64`, which RegisterImage accepts — `aarch64` it refuses.
 */
import { UsageError } from "../../util/errors.js";
import type { Ec2Architecture } from "./ec2-images.js";

const EC2_ARCHITECTURES: Readonly<Record<string, Ec2Architecture>> = {
  x86_64: "x86_64",
  amd64: "x86_64",
  x64: "x86_64",
  aarch64: "arm64",
  arm64: "arm64",
  i386: "i386",
  i486: "i386",
  i586: "i386",
  i686: "i386",
  x86: "i386",
};

const GLANCE_ARCHITECTURES: Readonly<Record<string, string>> = { x86_64: "x86_64", arm64: "aarch64", i386: "i686" };

/** Glance's word for an EC2 architecture; one EC2 does not list is kept as EC2 gave it. */
export function glanceArchitectureOf(ec2Architecture: string): string {
  return GLANCE_ARCHITECTURES[ec2Architecture] ?? ec2Architecture;
}

/**
 * EC2's word for an image's architecture: what inspecting the guest found (its programs' machine type) over what
 * the source's metadata says (Glance's `architecture`), x86_64 when neither tells.
 */
export function architectureFor(
  properties: Readonly<Record<string, string>> | undefined,
  inspected?: string,
): Ec2Architecture {
  const said = inspected && inspected !== "unknown" ? inspected : properties?.architecture;
  if (!said) return "x86_64";
  const arch = EC2_ARCHITECTURES[said.toLowerCase()];
  if (!arch) throw new UsageError(`architecture "${said}" has no EC2 equivalent (x86_64, arm64, i386)`);
  return arch;
}
