import type { Command } from "commander";
import { convertFile } from "../../formats/engine/convert.js";
import { UsageError } from "../../formats/errors.js";
import { looksLikeOva } from "../../formats/ova/ova-detect.js";
import { asksForOptionHelp, parseCreateOptions } from "../../formats/engine/create-options.js";
import { getDriver } from "../../formats/registry.js";
import { allowedReferences, runJob } from "../run-job.js";
import { formatBytes } from "../../util/human.js";

interface ConvertFlags {
  outputFormat: string;
  format?: string;
  option: string[];
  inputOption: string[];
  compress?: boolean;
  json?: boolean;
  quiet?: boolean;
  sync: boolean;
  allowReference?: string[];
  disk?: string;
  inPlace?: boolean;
  forceShare?: boolean;
}

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description(
      "convert an image to another format, sparse; a file output takes its name only once complete, " +
        "a block device is written in place",
    )
    // Optional for commander only, so that `-o help` needs no file names (as with qemu-img); checked below.
    .usage("[options] <input> <output>")
    .argument("[input]", "source image (format detected from content)")
    .argument("[output]", "destination file or block device")
    .requiredOption("-O, --output-format <fmt>", "output format (raw, qcow2, …)")
    .option("-f, --format <fmt>", "input format; skips detection")
    .option(
      "-o, --option <key=value,...>",
      "output format options (repeatable; `-o help` lists them)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option(
      "--input-option <key=value,...>",
      "input format options (repeatable; see `chromogenic formats`)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option("-c, --compress", "compress the output (qcow2: compression_type=zlib unless given)")
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress bar")
    .option("--no-sync", "do not fsync the output before it takes its name (faster; qemu-img's default)")
    .option("-n, --in-place", "the output exists (a file or block device): write into it where it is, not create it")
    .option("-U, --force-share", "read the input even while another process writes it (no lock taken)")
    .option("--allow-reference <path...>", "allow the input to open this backing/data file")
    .option("--disk <n>", "with an OVA input: which disk of the appliance to convert (default 1)")
    .action(async (input: string | undefined, output: string | undefined, flags: ConvertFlags) => {
      if (asksForOptionHelp(flags.option)) {
        // Loaded only here: the listing reads the schemas, and zod has no place in a conversion's start-up.
        const { createOptionHelp } = await import("../option-listing.js");
        process.stdout.write(await createOptionHelp(getDriver(flags.outputFormat)));
        return;
      }
      if (input === undefined || output === undefined) throw new UsageError("convert needs an <input> and an <output>");
      const createOptions = { ...parseCreateOptions(flags.option) };
      if (flags.compress && createOptions.compression_type === undefined) createOptions.compression_type = "zlib";
      await runJob(
        { json: !!flags.json, quiet: !!flags.quiet },
        async ({ signal, onProgress, warn }) => {
          // An OVA input: stream one of its disks out of the archive, manifest verified alongside.
          const ova = !flags.format && (await looksLikeOva(input));
          if (flags.disk !== undefined && !ova) throw new UsageError("--disk applies to OVA inputs only");
          const common = {
            input,
            output,
            outputFormat: flags.outputFormat,
            createOptions,
            signal,
            onProgress,
            sync: flags.sync,
            inPlace: flags.inPlace,
            forceShare: flags.forceShare,
          };
          if (ova) {
            // Loaded only for an OVA: the reader brings an XML parser every other conversion can do without.
            const { convertOvaDisk } = await import("../../formats/ova/ova-convert.js");
            const disk = flags.disk === undefined ? 1 : Number(flags.disk);
            return convertOvaDisk({ ...common, disk, onWarning: warn });
          }
          return convertFile({
            ...common,
            inputFormat: flags.format,
            inputOptions: parseCreateOptions(flags.inputOption),
            references: allowedReferences(flags.allowReference),
          });
        },
        (result) =>
          `${result.inputFormat} → ${result.outputFormat}: ${formatBytes(result.virtualSize)} disk, ` +
          `${formatBytes(result.dataBytes)} data, ${result.seconds.toFixed(2)} s`,
      );
    });
}
