import type { Command } from "commander";
import { sizeInBytes } from "../../formats/engine/create-options.js";
import { UsageError } from "../../util/errors.js";
import { formatBytes } from "../../util/human.js";
import { makeBootable, type BootableReport } from "../../workflows/bootable.js";
import { xenToKvmStep } from "../../workflows/xen-to-kvm-step.js";
import type { XenConversionReport } from "../../operations/conversion/convert-xen-guest.js";
import { runCommand } from "../run-command.js";
import { writeReportFile } from "../report-file.js";
import { requireRoot } from "../../util/require-root.js";

interface BootableFlags {
  outputFormat?: string;
  format?: string;
  size?: string;
  table?: string;
  dryRun?: boolean;
  report?: string;
  workDir?: string;
  json?: boolean;
  quiet?: boolean;
  xenToKvm?: boolean;
  kernel?: string;
  ramdisk?: string;
  initramfsGuestTool?: boolean;
}

/** `bootable INPUT OUTPUT`: a disk that boots on a BIOS PC from an image whose root has a kernel but no boot code. */
export function registerBootable(program: Command): void {
  program
    .command("bootable")
    .description(
      "make a disk that boots on a PC (BIOS: KVM, qemu, VirtualBox, VMware) from an image whose root filesystem " +
        "has a kernel and initramfs but no boot loader; a disk that already boots is copied unchanged",
    )
    .argument("<input>", "image (any format chromogenic reads): a bare filesystem or a partitioned disk")
    .argument("[output]", "bootable disk to write (not with --dry-run)")
    .option("-O, --output-format <fmt>", "format of OUTPUT (default: the input's)")
    .option("-f, --format <fmt>", "input format; skips detection")
    .option("--size <size>", "size of the new disk, e.g. 8G (default: the input's plus what the layout needs)")
    .option("--table <mbr|gpt>", "partition table for a bare filesystem (default mbr; GPT adds a BIOS boot partition)")
    .option("-n, --dry-run", "report the plan; nothing is written (the input is mounted read-only)")
    .option("--report <file.json>", "write the full report as JSON")
    .option("--work-dir <dir>", "folder for the raw working disk (default: the output's folder)")
    .option("--xen-to-kvm", "convert the guest from Xen to KVM even if it does not look like a Xen guest")
    .option("--kernel <file>", "an external kernel (EKI/AKI) installed into the guest when it has none for a PC")
    .option("--ramdisk <file>", "the external kernel's ramdisk (ERI/ARI)")
    .option(
      "--initramfs-guest-tool",
      "rebuild a Xen-only initramfs with the guest's own tool in the libguestfs appliance, not by appending modules",
    )
    .option("--json", "events and the report as JSON lines on stdout (the report is the `done` event)")
    .option("-q, --quiet", "no progress")
    .action(async (input: string, output: string | undefined, opts: BootableFlags) => {
      requireRoot("bootable");
      const size = opts.size === undefined ? undefined : sizeInBytes(opts.size);
      if (opts.size !== undefined && !size) throw new UsageError(`--size ${opts.size} is not a size (e.g. 8G, 512M)`);
      if (opts.table !== undefined && opts.table !== "mbr" && opts.table !== "gpt")
        throw new UsageError(`--table ${opts.table}: give mbr or gpt`);
      await runCommand(
        { command: "bootable", json: !!opts.json, quiet: !!opts.quiet, summary: renderSummary },
        async ({ signal, onEvent }) => {
          // Xen guests are detected and converted on the way (--xen-to-kvm forces it).
          const xen = xenToKvmStep({
            force: opts.xenToKvm,
            kernel: opts.kernel,
            ramdisk: opts.ramdisk,
            initramfsGuestTool: opts.initramfsGuestTool,
            onEvent,
          });
          const made = await makeBootable({
            input,
            output,
            outputFormat: opts.outputFormat,
            inputFormat: opts.format,
            size,
            table: opts.table as "mbr" | "gpt" | undefined,
            dryRun: opts.dryRun,
            workDir: opts.workDir,
            guestEdits: xen.guestEdits,
            afterBuild: (disk) => xen.afterBuild(disk, signal),
            signal,
            onEvent,
          });
          const xenReport = xen.report();
          const report = xenReport ? { ...made, xenToKvm: xenReport } : made;
          if (opts.report) await writeReportFile(opts.report, report);
          return report;
        },
      );
    });
}

export function renderSummary(r: BootableReport): string {
  const lines = [`${r.dryRun ? "dry run (nothing written): " : ""}${r.input}${r.output ? ` -> ${r.output}` : ""}`];
  if (r.alreadyBootable) {
    lines.push(
      `already boots: ${r.alreadyBootable.loader} (${r.alreadyBootable.config} names ${r.alreadyBootable.kernel}); ` +
        `${r.dryRun ? "would be " : ""}copied unchanged as ${r.outputFormat}`,
    );
    return lines.join("\n") + "\n";
  }
  if (r.layout) {
    const how = r.layout.mode === "kept" ? "the input's table kept" : "new table";
    lines.push(`disk: ${formatBytes(r.layout.diskSize)}, ${r.layout.table.toUpperCase()} (${how}), ${r.outputFormat}`);
    for (const p of r.layout.partitions)
      lines.push(
        `  ${p.number}: ${p.role}, ${formatBytes(p.size)} at ${p.offset / 512}` +
          (p.grownFrom !== undefined && p.grownFrom !== p.size ? ` (grown from ${formatBytes(p.grownFrom)})` : ""),
      );
  }
  if (r.loader) {
    const core =
      r.loader.coreBytes !== undefined
        ? `, core ${formatBytes(r.loader.coreBytes)} at sector ${r.loader.coreLba} (${r.loader.modules?.join(" ")})`
        : "";
    lines.push(`loader: ${r.loader.name}${core}, ${r.loader.config}`);
  }
  if (r.kernel)
    lines.push(
      `kernel: ${r.kernel.kernel}${r.kernel.initramfs ? ` + ${r.kernel.initramfs}` : ""} ${r.kernel.arguments.join(" ")}`,
    );
  const xen = (r as BootableReport & { xenToKvm?: XenConversionReport }).xenToKvm;
  if (xen) {
    const initramfs = xen.initramfs && "rebuilt" in xen.initramfs && xen.initramfs.rebuilt ? xen.initramfs : undefined;
    lines.push(
      `Xen → KVM (${xen.xen.xen ? "a Xen guest" : "asked"}): ${xen.changes.length} change(s)` +
        (initramfs ? `; initramfs rebuilt by ${initramfs.tool} in the appliance (${initramfs.seconds} s)` : ""),
    );
  }
  const verb = r.dryRun ? "would " : "";
  for (const c of r.changes) lines.push(`  ${verb}${c.action} ${c.path}: ${c.detail}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n") + "\n";
}
