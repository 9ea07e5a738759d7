import type { Command } from "commander";
import { noRebootOption } from "../no-reboot-option.js";
import { UsageError } from "../../formats/errors.js";
import { exportOva, type OvaExportRequest, type OvaExportResult } from "../../formats/ova/ova-writer.js";
import type { BootableSummary } from "../../workflows/job-state.js";
import { describe as describeBootable } from "../../workflows/bootable-step.js";
import { MANIFEST_ALGORITHMS, type ManifestAlgorithm } from "../../formats/ova/manifest.js";
import { OVA_TARGETS, parseHwVersion, parseOvfVersion, type OvaTargetName } from "../../formats/ova/ova-targets.js";
import {
  CONTROLLER_MODELS,
  NIC_MODELS,
  OS_TYPE_NAMES,
  parseControllerModel,
  parseNicModel,
  parseOsType,
} from "../../formats/ova/hardware-profile.js";
import { allowedReferences } from "../allowed-references.js";
import { runCommand } from "../run-command.js";
import { FILE_UNDO_SECONDS } from "../interrupts.js";
import { formatBytes } from "../../util/human.js";
import {
  bootableOptions,
  bootableRequest,
  jobSettings,
  runJobRequest,
  type BootableJobFlags,
} from "./workflow-output.js";
import { OVA_FORMAT, isOvaFormat } from "../../formats/ova/ova-format.js";
import { writableFormats } from "../../formats/registry.js";
import { repeatable } from "../repeatable.js";
import { cloudKeyOptions } from "../cloud-key-options.js";
import { awsOptions } from "../cloud-options.js";
import { serviceOptions, type ServiceFlags } from "../service-options.js";

/** What `export --cloud` writes: an OVA, or a disk in any format a driver writes. */
function cloudExportFormats(): string[] {
  return [OVA_FORMAT, ...writableFormats()];
}

interface ExportFlags extends BootableJobFlags, ServiceFlags {
  format?: string;
  target?: string;
  cloud?: string;
  image?: string;
  instance?: string;
  clean?: string | boolean;
  operations?: string;
  workDir?: string;
  keep?: boolean;
  keepSnapshot?: boolean;
  partCache?: boolean;
  name?: string;
  description?: string;
  cpus?: string;
  memory?: string;
  nic?: string;
  controller?: string;
  osType?: string;
  ovfVersion?: string;
  manifest?: string;
  hwVersion?: string;
  inputFormat?: string;
  json?: boolean;
  quiet?: boolean;
  allowReference?: string[];
  forceShare?: boolean;
}

function positiveInteger(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} "${text}" is not a whole number`);
  return Number(text);
}

function manifestChoice(text: string | undefined): ManifestAlgorithm | "none" | undefined {
  if (text === undefined) return undefined;
  const t = text.toLowerCase();
  if (t === "none" || (MANIFEST_ALGORITHMS as readonly string[]).includes(t)) return t as ManifestAlgorithm | "none";
  throw new UsageError(`--manifest "${text}" is not one of ${MANIFEST_ALGORITHMS.join(", ")}, none`);
}

export function registerExport(program: Command): void {
  const command = noRebootOption(program.command("export"))
    .description(
      "package disk images as an appliance another platform imports: an OVA of streamOptimized VMDKs with a " +
        "descriptor and manifest tailored to the target (written under a temporary name until complete); with " +
        "--cloud, export an image or an instance of a cloud (or the local store) to a file in any format",
    )
    .argument(
      "<paths...>",
      "input image(s), one disk each in order (boot disk first), then the output .ova (- for stdout); " +
        "with --cloud only the output",
    )
    .option("--format <format>", `package format (ova); with --cloud: ${cloudExportFormats().join("|")}`)
    .option("--target <target>", `importer to satisfy: ${OVA_TARGETS.join("|")} (required for local OVA export)`)
    .option("--cloud <cloud>", "export from this cloud or store (see `chromogenic clouds`)")
    .option("--image <image>", "with --cloud: the image's id or name")
    .option("--instance <instance>", "with --cloud: snapshot this instance (the snapshot is deleted afterwards)")
    .option("--clean [profile]", "with --cloud: clean the guest on one sparse raw working copy; needs root")
    .option("--operations <list>", "with --cloud: cleaning operations (implies --clean)")
    .option("--work-dir <dir>", "with --cloud: where temporary data goes")
    .option(
      "--no-part-cache",
      "with --cloud, from a Eucalyptus/EC2 bundle: keep no verified parts for a resumed download (see migrate)",
    )
    .option("--keep", "with --cloud: keep leftovers after a failure")
    .option("--keep-snapshot", "with --cloud --instance: keep the instance's snapshot after success too");
  cloudKeyOptions(command);
  awsOptions(command);
  serviceOptions(command);
  // The boot disk (with --cloud: the job's image) made bootable before it is written.
  bootableOptions(command, false)
    .option("--name <name>", "virtual machine name (default: the first input's file name)")
    .option("--description <text>", "annotation shown by the importer")
    .option("--cpus <n>", "virtual CPUs (default 2)")
    .option("--memory <MiB>", "memory in MiB (default 2048)")
    .option("--nic <model>", `network adapter: ${NIC_MODELS.join("|")}|none (default per target)`)
    .option("--controller <model>", `disk controller: ${CONTROLLER_MODELS.join("|")} (default per target)`)
    .option("--os-type <type>", `guest OS: ${OS_TYPE_NAMES.join("|")} (default linux64)`)
    .option("--ovf-version <version>", "OVF version: 1.0 or 2.0", "1.0")
    .option("--manifest <algorithm>", `manifest digest: ${MANIFEST_ALGORITHMS.join("|")}|none (default per target)`)
    .option("--hw-version <n>", "VMware hardware version for vmware/aws (default 13, the newest ESXi 6.5 accepts)")
    .option("-f, --input-format <fmt>", "input format; skips detection")
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress bar")
    .option("--allow-reference <path>", "allow an input to open this backing/data file (repeatable)", repeatable, [])
    .option("-U, --force-share", "read the inputs even while another process writes them (no lock taken)")
    .action(async (paths: string[], flags: ExportFlags) => {
      if (flags.cloud !== undefined) return exportFromCloud(paths, flags);
      if (flags.image || flags.instance) throw new UsageError("--image and --instance need --cloud");
      if (flags.server !== undefined || flags.tokenFile !== undefined)
        throw new UsageError("--server runs a job of a cloud or store: it needs --cloud");
      if (!isOvaFormat(flags.format ?? OVA_FORMAT))
        throw new UsageError(`--format "${flags.format}" is not supported (${OVA_FORMAT} is)`);
      if (!flags.target) throw new UsageError(`export needs --target (${OVA_TARGETS.join("|")})`);
      if (paths.length < 2) throw new UsageError("export needs at least one input and an output path");
      const output = paths[paths.length - 1]!;
      const inputs = paths.slice(0, -1);
      if (output === "-" && flags.json) throw new UsageError("--json and output - both use standard output");
      // The boot disk (the first input) made bootable first: the request says how (paths absolute).
      const bootable = bootableRequest("export", flags);
      await runCommand(
        {
          command: "export",
          undoSeconds: FILE_UNDO_SECONDS,
          json: !!flags.json,
          quiet: !!flags.quiet,
          hideProgress: output === "-",
          summaryTo: "stderr",
          summary: (result: OvaExportResult & { bootable?: BootableSummary }) => {
            const disks = result.members.length - (result.manifest === "none" ? 1 : 2);
            return (
              `ova for ${result.target} (OVF ${result.ovfVersion}, manifest ${result.manifest}): ${disks} disk(s), ` +
              `${formatBytes(result.virtualSize)} virtual, ${formatBytes(result.dataBytes)} data, ` +
              `${result.seconds.toFixed(2)} s${output === "-" ? "" : ` → ${output}`}` +
              (result.bootable ? `\n${describeBootable(result.bootable)}` : "")
            );
          },
        },
        async ({ signal, onProgress, onEvent }) => {
          const request: OvaExportRequest = {
            inputs,
            output,
            target: flags.target as OvaTargetName,
            name: flags.name,
            description: flags.description,
            cpus: positiveInteger(flags.cpus, "--cpus"),
            memoryMiB: positiveInteger(flags.memory, "--memory"),
            nic: flags.nic === undefined ? undefined : parseNicModel(flags.nic),
            controller: flags.controller === undefined ? undefined : parseControllerModel(flags.controller),
            osType: flags.osType === undefined ? undefined : parseOsType(flags.osType),
            ovfVersion: parseOvfVersion(flags.ovfVersion ?? "1.0"),
            manifest: manifestChoice(flags.manifest),
            hwVersion: flags.hwVersion === undefined ? undefined : parseHwVersion(flags.hwVersion),
            inputFormat: flags.inputFormat,
            references: allowedReferences(flags.allowReference),
            forceShare: flags.forceShare,
            signal,
            onProgress,
          };
          if (!bootable) return exportOva(request);
          const { exportBootableOva } = await import("../../workflows/bootable-export.js");
          return exportBootableOva({ ...request, bootable, onEvent });
        },
      );
    });
}

async function exportFromCloud(paths: string[], flags: ExportFlags): Promise<void> {
  if (paths.length !== 1) throw new UsageError("export --cloud takes one argument: the output file");
  if (!flags.image === !flags.instance)
    throw new UsageError("export --cloud needs exactly one of --image and --instance");
  const format = flags.format;
  const exportFormats = cloudExportFormats();
  if (!format || !exportFormats.includes(format)) {
    throw new UsageError(`export --cloud needs --format ${exportFormats.join("|")}`);
  }
  if (paths[0] === "-") throw new UsageError("export --cloud writes a file (a resumable job cannot write to stdout)");
  if (flags.target && isOvaFormat(format) && !(OVA_TARGETS as readonly string[]).includes(flags.target)) {
    throw new UsageError(`--target "${flags.target}" is not one of ${OVA_TARGETS.join(", ")}`);
  }
  await runJobRequest("export", flags, {
    kind: "export",
    source: { cloud: flags.cloud!, image: flags.image, instance: flags.instance },
    destination: { kind: "file", path: paths[0]!, format, target: flags.target, name: flags.name },
    ...jobSettings(flags),
    bootable: bootableRequest("export", flags),
  });
}
