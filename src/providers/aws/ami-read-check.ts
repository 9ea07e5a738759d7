/**
 * Whether an AMI can be read at all, and booted where it is going, decided from its DescribeImages record
 * before any snapshot is touched: a clear refusal naming the AMI and the reason instead of an AccessDenied in
 * the middle of a transfer, or a disk that arrives and never boots.
 *
 *  - Product codes: an AMI carrying one (AWS Marketplace) is sold under the seller's terms. ExportImage refuses
 *    such images, and images made from them (VM Import/Export User Guide, "Considerations for image export",
 *    https://docs.aws.amazon.com/vm-import/latest/userguide/limits-image-export.html); their snapshots belong
 *    to the seller's account and are not shared with the buyer, so the EBS direct APIs, which read only
 *    snapshots the caller owns or that are shared with it and never public ones
 *    (https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-faq.html), cannot read them either.
 *  - Instance-store AMIs have no snapshot: they are read from their S3 bundle, not by these paths.
 *  - The boot mode: an AMI without one boots as its instance type does (UEFI on arm64, legacy BIOS on x86,
 *    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-boot.html); "uefi-preferred" boots either way.
 *    A UEFI-only guest does not boot on a legacy-BIOS destination, nor a BIOS-only one on a UEFI-only
 *    destination.
 */
import type { Ec2Image } from "../ec2/ec2-records.js";
import { ChromogenicError } from "../../util/errors.js";

export type AmiReadPath = "ebs-direct" | "export-image";
export type Firmware = "legacy-bios" | "uefi";

export interface AmiReadCheckOptions {
  readonly path: AmiReadPath;
  /** The firmware the destination boots with (e.g. ["legacy-bios"] for a cloud without UEFI); unchecked if absent. */
  readonly destinationFirmware?: readonly Firmware[];
}

/** The firmware an AMI's guest needs: one mode, or both for "uefi-preferred". */
export function amiFirmware(image: Ec2Image): Firmware[] {
  const mode = image.bootMode ?? (image.architecture === "arm64" ? "uefi" : "legacy-bios");
  if (mode === "uefi-preferred") return ["uefi", "legacy-bios"];
  return mode === "uefi" ? ["uefi"] : ["legacy-bios"];
}

/** Every reason the AMI cannot be read by `path` or booted at the destination; empty when none. */
export function amiReadProblems(image: Ec2Image, options: AmiReadCheckOptions): string[] {
  const problems: string[] = [];
  const codes = image.productCodes ?? [];
  if (codes.length) {
    const list = codes.map((c) => (c.type ? `${c.id} (${c.type})` : c.id)).join(", ");
    problems.push(
      options.path === "export-image"
        ? `it carries product code ${list}: ExportImage refuses AWS Marketplace images and images made from them`
        : `it carries product code ${list}: its snapshots belong to the AWS Marketplace seller and are not shared, so the EBS direct APIs cannot read them`,
    );
  }
  if (image.rootDeviceType === "instance-store") {
    problems.push("it is instance-store backed: it has no snapshot; read its S3 bundle instead");
  }
  if (image.state !== "available") problems.push(`it is ${image.state}, not available`);
  const wanted = options.destinationFirmware;
  if (wanted?.length) {
    const needs = amiFirmware(image);
    if (!needs.some((f) => wanted.includes(f))) {
      const declared = image.bootMode
        ? `boot mode ${image.bootMode}`
        : `no boot mode, so ${needs[0]} on ${image.architecture ?? "x86_64"}`;
      problems.push(
        `it boots only with ${needs.join(" or ")} (${declared}) and the destination boots ${wanted.join(" or ")}`,
      );
    }
  }
  return problems;
}

/** Throws an EUNSUPPORTED error naming the AMI and every reason, when there is one. */
export function checkAmiReadable(image: Ec2Image, options: AmiReadCheckOptions): void {
  const problems = amiReadProblems(image, options);
  if (problems.length === 0) return;
  const name = image.name ? `${image.id} ("${image.name}")` : image.id;
  throw new ChromogenicError(`AMI ${name} cannot be read: ${problems.join("; ")}`, "EUNSUPPORTED");
}
