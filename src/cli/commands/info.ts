import type { Command } from "commander";
import { imageInfo } from "../../formats/engine/image-info.js";
import type { ImageDetails } from "../../formats/types.js";
import { formatBytes } from "../../util/human.js";
import { parseCreateOptions } from "../../formats/engine/create-options.js";
import { looksLikeOva } from "../../formats/ova/ova-detect.js";
import { allowedReferences } from "../run-job.js";
import { withForceShare } from "../../formats/io/force-share.js";

interface InfoFlags {
  format?: string;
  json?: boolean;
  allowReference?: string[];
  inputOption: string[];
  forceShare?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerInfo(program: Command): void {
  program
    .command("info")
    .description("show an image's format, sizes and settings (format detected from content)")
    .argument("<image>", "image file")
    .option("-f, --format <fmt>", "skip detection and open as this format")
    .option("--json", "print JSON")
    .option("--input-option <key=value,...>", "format options for opening the image (repeatable)", collect, [])
    .option("--allow-reference <path...>", "allow the image to open this backing/data file")
    .option("-U, --force-share", "read the image even while another process writes it (no lock taken)")
    .action(async (image: string, opts: InfoFlags) => {
      // An OVA is an appliance (descriptor + disks), not a disk: show the appliance.
      if (!opts.format && (await looksLikeOva(image))) {
        // Loaded only for an OVA (see ova-detect.ts).
        const [{ ovaInfo }, { renderOvaInfo }] = await Promise.all([
          import("../../formats/ova/ova-info.js"),
          import("../ova-info-display.js"),
        ]);
        const ova = await withForceShare(opts.forceShare, () => ovaInfo(image));
        process.stdout.write(opts.json ? JSON.stringify(ova, null, 2) + "\n" : renderOvaInfo(ova));
        return;
      }
      const info = await imageInfo(image, {
        format: opts.format,
        driverOptions: parseCreateOptions(opts.inputOption),
        references: allowedReferences(opts.allowReference),
        forceShare: opts.forceShare,
      });
      process.stdout.write(opts.json ? JSON.stringify(info, null, 2) + "\n" : renderInfo(info));
    });
}

function renderInfo(info: ImageDetails & { path: string }): string {
  const lines = [
    `image: ${info.path}`,
    `file format: ${info.format}`,
    `virtual size: ${formatBytes(info.virtualSize)} (${info.virtualSize} bytes)`,
    `disk size: ${formatBytes(info.actualSize)}`,
    `allocated data: ${formatBytes(info.allocatedBytes ?? 0)} (${info.allocatedBytes ?? 0} bytes)`,
  ];
  if (info.clusterSize !== undefined) lines.push(`cluster size: ${info.clusterSize}`);
  if (info.compression !== undefined) lines.push(`compression: ${info.compression}`);
  lines.push(`backing file: ${info.backingFile ?? "none"}`);
  if (info.backingFormat) lines.push(`backing file format: ${info.backingFormat}`);
  lines.push(`data file: ${info.dataFile ?? "none"}`);
  const specific = Object.entries(info.formatSpecific);
  if (specific.length) {
    lines.push("format specific information:");
    for (const [k, v] of specific) lines.push(`    ${k}: ${v}`);
  }
  return lines.join("\n") + "\n";
}
