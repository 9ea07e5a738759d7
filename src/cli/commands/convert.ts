import type { Command } from "commander";
import { convertFile, type ConvertStats } from "../../formats/engine/convert.js";
import { UsageError } from "../../formats/errors.js";
import { asksForOptionHelp, parseCreateOptions } from "../../formats/engine/create-options.js";
import { getDriver } from "../../formats/registry.js";
import { allowedReferences } from "../allowed-references.js";
import { runCommand } from "../run-command.js";
import { FILE_UNDO_SECONDS } from "../interrupts.js";
import { formatBytes } from "../../util/human.js";
import { repeatable } from "../repeatable.js";
import { checkServiceFlags, serviceOptions, type ServiceFlags } from "../service-options.js";
import type { DoneEvent } from "../../util/events.js";

interface ConvertFlags extends ServiceFlags {
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
  progress?: boolean;
  cache?: string;
  sourceCache?: string;
  sparseSize?: string;
  outOfOrder?: boolean;
  coroutines?: string;
}

/** qemu-img's cache modes: only `unsafe` skips the final flush; the others end with the output on disk. */
const CACHE_MODES = ["none", "writeback", "writethrough", "directsync", "unsafe"];

/**
 * qemu-img convert's options that concern how qemu does its work rather than what it makes: accepted so that
 * scripts written for qemu-img run unchanged, each mapped to the nearest behaviour here (said in --help).
 */
function qemuHabits(flags: ConvertFlags): { sync: boolean } {
  for (const [flag, mode] of [
    ["-t", flags.cache],
    ["-T", flags.sourceCache],
  ] as const) {
    if (mode !== undefined && !CACHE_MODES.includes(mode)) {
      throw new UsageError(`${flag} ${mode}: the cache modes are ${CACHE_MODES.join(", ")}`);
    }
  }
  if (flags.sparseSize !== undefined && !/^\d+[kKmMgG]?$/.test(flags.sparseSize)) {
    throw new UsageError(`-S ${flags.sparseSize}: not a size (bytes, or with k, M, G)`);
  }
  if (flags.coroutines !== undefined && !/^([1-9]|1[0-6])$/.test(flags.coroutines)) {
    throw new UsageError(`-m ${flags.coroutines}: qemu-img takes 1 to 16`);
  }
  return { sync: flags.sync && flags.cache !== "unsafe" };
}

type ConvertResult = ConvertStats & { inputFormat: string; outputFormat: string };

function summary(result: ConvertResult): string {
  return (
    `${result.inputFormat} → ${result.outputFormat}: ${formatBytes(result.virtualSize)} disk, ` +
    `${formatBytes(result.dataBytes)} data, ${result.seconds.toFixed(2)} s`
  );
}

/**
 * What a service's convert job takes (job-spec.ts): the files, the output format and its options. The options
 * about how this host reads its files have no meaning there: refused, rather than silently not applied.
 */
function serviceConvertSpec(input: string, output: string, flags: ConvertFlags, options: Record<string, string>) {
  const local: [string, boolean][] = [
    ["-f", flags.format !== undefined],
    ["--input-option", flags.inputOption.length > 0],
    ["--allow-reference", (flags.allowReference ?? []).length > 0],
    ["--disk", flags.disk !== undefined],
    ["-n", !!flags.inPlace],
    ["-U", !!flags.forceShare],
    ["--no-sync", !flags.sync],
  ];
  const refused = local.filter(([, given]) => given).map(([name]) => name);
  if (refused.length) throw new UsageError(`${refused.join(", ")}: not with --server (the service's convert job)`);
  if (input === "-" || output === "-") throw new UsageError("--server converts files of the service, not - (stdio)");
  return { kind: "convert" as const, input, output, format: flags.outputFormat, options };
}

export function registerConvert(program: Command): void {
  const command = program
    .command("convert")
    .description(
      "convert an image to another format, sparse; a file output takes its name only once complete, " +
        "a block device is written in place",
    )
    // Optional for commander only, so that `-o help` needs no file names (as with qemu-img); checked below.
    .usage("[options] <input> <output>")
    .argument("[input]", "source image (format detected from content); - reads standard input")
    .argument("[output]", "destination file or block device")
    .option("-O, --output-format <fmt>", "output format (raw, qcow2, …); raw when not given, as in qemu-img", "raw")
    .option("-f, --format <fmt>", "input format; skips detection")
    .option("-o, --option <key=value,...>", "output format options (repeatable; `-o help` lists them)", repeatable, [])
    .option(
      "--input-option <key=value,...>",
      "input format options (repeatable; see `chromogenic formats`)",
      repeatable,
      [],
    )
    .option("-c, --compress", "compress the output (qcow2: compression_type=zlib unless given)")
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress bar")
    .option("--no-sync", "do not fsync the output before it takes its name (faster; qemu-img's default)")
    .option("-n, --in-place", "the output exists (a file or block device): write into it where it is, not create it")
    .option("-U, --force-share", "read the input even while another process writes it (no lock taken)")
    .option("--allow-reference <path>", "allow the input to open this backing/data file (repeatable)", repeatable, [])
    .option("--disk <n>", "with an OVA input: which disk of the appliance to convert (default 1)")
    .option("-p, --progress", "qemu-img's: show progress (shown by default on a terminal; -q hides it)")
    .option("-t, --cache <mode>", "qemu-img's output cache mode: unsafe = --no-sync; the others flush at the end")
    .option("-T, --source-cache <mode>", "qemu-img's input cache mode: accepted, inputs are read through the cache")
    .option("-S, --sparse-size <size>", "qemu-img's: accepted; zeros are skipped at the output format's granularity")
    .option("-W, --out-of-order", "qemu-img's: accepted; writes already go out of order where the format allows")
    .option("-m, --coroutines <n>", "qemu-img's: accepted; parallelism is sized to the CPUs");
  serviceOptions(command).action(async (input: string | undefined, output: string | undefined, flags: ConvertFlags) => {
    if (asksForOptionHelp(flags.option)) {
      // Loaded only here: the listing reads the schemas, and zod has no place in a conversion's start-up.
      const { createOptionHelp } = await import("../option-listing.js");
      process.stdout.write(await createOptionHelp(getDriver(flags.outputFormat)));
      return;
    }
    if (input === undefined || output === undefined) throw new UsageError("convert needs an <input> and an <output>");
    const habits = qemuHabits(flags);
    const createOptions = { ...parseCreateOptions(flags.option) };
    if (flags.compress && createOptions.compression_type === undefined) createOptions.compression_type = "zlib";
    checkServiceFlags(flags);
    if (flags.server !== undefined) {
      const spec = serviceConvertSpec(input, output, flags, createOptions);
      const { runServiceJob } = await import("../service-run.js");
      const text = (done: DoneEvent) => summary(done as unknown as ConvertResult);
      return runServiceJob("convert", flags, spec, { text, to: "stderr" });
    }
    await runCommand(
      {
        command: "convert",
        undoSeconds: FILE_UNDO_SECONDS,
        json: !!flags.json,
        quiet: !!flags.quiet,
        summaryTo: "stderr",
        summary,
      },
      ({ signal, onProgress, warn }) =>
        // An OVA input: one of its disks is streamed out of the archive, its manifest verified alongside.
        convertFile({
          input,
          output,
          outputFormat: flags.outputFormat,
          createOptions,
          signal,
          onProgress,
          onWarning: warn,
          inputFormat: flags.format,
          inputOptions: parseCreateOptions(flags.inputOption),
          references: allowedReferences(flags.allowReference),
          sync: habits.sync,
          inPlace: flags.inPlace,
          forceShare: flags.forceShare,
          disk: flags.disk === undefined ? undefined : Number(flags.disk),
        }),
    );
  });
}
