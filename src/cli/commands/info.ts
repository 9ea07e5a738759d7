import type { Command } from "commander";
import { imageInfo, type DiskImageInfo } from "../../formats/engine/image-info.js";
import { formatBytes } from "../../util/human.js";
import { parseCreateOptions } from "../../formats/engine/create-options.js";
import { allowedReferences } from "../allowed-references.js";
import { renderOvaInfo } from "../ova-info-display.js";
import { printResult } from "../run-command.js";
import { qemuInfoJson } from "../qemu-info-json.js";
import { UsageError } from "../../util/errors.js";
import { repeatable } from "../repeatable.js";

interface InfoFlags {
  format?: string;
  json?: boolean;
  allowReference?: string[];
  inputOption: string[];
  forceShare?: boolean;
  output: string;
}

export function registerInfo(program: Command): void {
  program
    .command("info")
    .description("show an image's format, sizes and settings (format detected from content)")
    .argument("<image>", "image file; - reads standard input")
    .option("-f, --format <fmt>", "skip detection and open as this format")
    .option("--json", "the result as one JSON line (a `done` event)")
    .option("--output <human|json>", "json: qemu-img info's JSON (its key names), for scripts written for it", "human")
    .option("--input-option <key=value,...>", "format options for opening the image (repeatable)", repeatable, [])
    .option("--allow-reference <path>", "allow the image to open this backing/data file (repeatable)", repeatable, [])
    .option("-U, --force-share", "read the image even while another process writes it (no lock taken)")
    .action(async (image: string, opts: InfoFlags) => {
      if (opts.output !== "human" && opts.output !== "json") {
        throw new UsageError(`--output ${opts.output}: the choices are human and json`);
      }
      const info = await imageInfo(image, {
        format: opts.format,
        driverOptions: parseCreateOptions(opts.inputOption),
        references: allowedReferences(opts.allowReference),
        forceShare: opts.forceShare,
      });
      // An OVA is an appliance (descriptor + disks), not a disk: shown as one.
      const summary = (i: typeof info) => (i.kind === "appliance" ? renderOvaInfo(i) : renderInfo(i));
      if (opts.output === "json" && !opts.json) {
        if (info.kind === "appliance") {
          throw new UsageError(`${info.path} is an OVA appliance, not a disk image: --json describes it`);
        }
        process.stdout.write(`${JSON.stringify(qemuInfoJson(info, image), null, 4)}\n`);
        return;
      }
      printResult({ command: "info", json: !!opts.json, summary }, info);
    });
}

function renderInfo(info: DiskImageInfo): string {
  const lines = [
    `image: ${info.path}`,
    `file format: ${info.format}`,
    `virtual size: ${formatBytes(info.virtualSize)} (${info.virtualSize} bytes)`,
    `disk size: ${formatBytes(info.actualSize)}`,
    `allocated data: ${formatBytes(info.allocatedBytes)} (${info.allocatedBytes} bytes)`,
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
  // As an OVA's info shows its reader's warnings (ova-info-display.ts).
  for (const w of info.warnings ?? []) lines.push(`warning: ${w}`);
  return lines.join("\n") + "\n";
}
