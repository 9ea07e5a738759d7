import type { Command } from "commander";
import { UsageError } from "../../util/errors.js";
import { cleanImage } from "../../operations/cleaning/clean-image.js";
import type { CleaningReport } from "../../operations/cleaning/cleaning-report.js";
import { CLEANING_OPERATIONS } from "../../operations/cleaning/operation-registry.js";
import { formatBytes } from "../../util/human.js";
import { printResult, runCommand } from "../run-command.js";
import { writeReportFile } from "../report-file.js";
import { requireRoot } from "../../util/require-root.js";

interface CleanFlags {
  operations: string[];
  enable?: string;
  profile?: string;
  keepUser: string[];
  keepUserAccounts: string[];
  removeUserAccounts: string[];
  add?: string;
  format?: string;
  dryRun?: boolean;
  report?: string;
  inPlace?: boolean;
  outputFormat?: string;
  workDir?: string;
  json?: boolean;
  quiet?: boolean;
  listOperations?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(",").filter((v) => v.length > 0)];
}

/** virt-sysprep's user lists: comma-separated, repeatable, and an empty name is a mistake, not nothing. */
function collectUsers(value: string, previous: string[]): string[] {
  const names = value.split(",");
  if (names.some((n) => n.trim() === "")) throw new UsageError(`empty user name in "${value}"`);
  return [...previous, ...names.map((n) => n.trim())];
}

function appendValue(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function once(flag: string) {
  return (value: string, previous: string | undefined): string => {
    if (previous !== undefined) throw new UsageError(`${flag} can only be given once`);
    return value;
  };
}

/** `clean IMAGE [OUTPUT]` and `clean --list-operations`. */
export function registerClean(program: Command): void {
  program
    .command("clean")
    .description(
      "clean a guest image for publishing: accounts, keys, logs, histories, machine identity, cloud-init state",
    )
    .argument("[image]", "image file (any format chromogenic reads)")
    .argument("[output]", "cleaned image to write (not needed with -a, --in-place or --dry-run)")
    .option("-a, --add <disk>", "clean DISK in place, as virt-sysprep -a does (instead of IMAGE OUTPUT)", once("-a"))
    .option("--format <fmt>", 'format of the input (virt-sysprep\'s --format; default or "auto": recognised)')
    .option(
      "--operations <list>",
      'virt-sysprep-style selection, e.g. "defaults,-ssh-hostkeys,user-account" (repeatable: applied in turn)',
      appendValue,
      [],
    )
    .option(
      "--enable <list>",
      'exactly these operations, e.g. "ssh-hostkeys,machine-id" (virt-sysprep\'s --enable)',
      once("--enable"),
    )
    .option("--profile <name|file>", "built-in profile (default, atmosphere) or a YAML profile file")
    .option(
      "--keep-user-accounts <users>",
      "accounts user-account keeps (comma-separated, repeatable)",
      collectUsers,
      [],
    )
    .option(
      "--remove-user-accounts <users>",
      "the only accounts user-account removes (comma-separated, repeatable)",
      collectUsers,
      [],
    )
    .option("--keep-user <name>", "same as --keep-user-accounts", collect, [])
    .option("-n, --dry-run", "list what would change; nothing is written (the image is opened read-only)")
    .option("--report <file.json>", "write the full report as JSON")
    .option("--in-place", "clean IMAGE itself instead of writing OUTPUT")
    .option("-O, --output-format <fmt>", "format of OUTPUT (default: the input's)")
    .option("--work-dir <dir>", "folder for the sparse raw working copy (default: beside the image)")
    .option("--json", "events and the report as JSON lines on stdout (the report is the `done` event)")
    .option("-q, --quiet", "no progress")
    .option("--list-operations", "list the operations: name, on by default, guest families, description")
    .action(async (image: string | undefined, output: string | undefined, opts: CleanFlags) => {
      if (opts.listOperations) {
        const operations = operationList();
        printResult({ command: "clean", json: !!opts.json, summary: renderOperationList }, { operations });
        return;
      }
      if (opts.add !== undefined) {
        if (image) throw new UsageError("-a DISK cleans DISK in place: leave out IMAGE and OUTPUT");
        image = opts.add;
      }
      if (!image) throw new UsageError("clean needs an IMAGE, or -a DISK (or --list-operations)");
      requireRoot("clean");
      if (opts.dryRun && output) throw new UsageError("--dry-run writes nothing: leave out OUTPUT");
      const inPlace = opts.inPlace || (opts.add !== undefined && !opts.dryRun);
      await runCommand(
        { command: "clean", json: !!opts.json, quiet: !!opts.quiet, summary: renderSummary },
        async ({ signal, onEvent }) => {
          const report = await cleanImage(image!, {
            operations: opts.operations.length ? opts.operations.join(",") : undefined,
            enable: opts.enable,
            profile: opts.profile,
            keepUsers: [...opts.keepUser, ...opts.keepUserAccounts],
            removeUsers: opts.removeUserAccounts,
            dryRun: opts.dryRun,
            inPlace,
            format: opts.format === "auto" ? undefined : opts.format,
            output,
            outputFormat: opts.outputFormat,
            workDir: opts.workDir,
            signal,
            onEvent,
          });
          if (opts.report) await writeReportFile(opts.report, report);
          return report;
        },
      );
    });
}

function operationList() {
  return CLEANING_OPERATIONS.map((op) => ({
    name: op.name,
    default: op.defaultEnabled,
    families: op.families === "all" ? ["all"] : [...op.families],
    description: op.description,
  }));
}

function renderOperationList({ operations: list }: { operations: ReturnType<typeof operationList> }): string {
  const width = Math.max(...list.map((o) => o.name.length));
  const fam = Math.max(...list.map((o) => o.families.join(",").length));
  return (
    list
      .map(
        (o) => `${o.name.padEnd(width)} ${o.default ? "*" : " "} ${o.families.join(",").padEnd(fam)} ${o.description}`,
      )
      .join("\n") + "\n(* = in defaults; run order is the order above)\n"
  );
}

/** Counts per operation and action, bytes freed, warnings, timings. */
export function renderSummary(r: CleaningReport): string {
  const lines = [
    `${r.dryRun ? "dry run (nothing written): " : ""}${r.image}${r.output ? ` -> ${r.output}` : ""}`,
    `guest: ${r.guest.distribution} ${r.guest.version} (family ${r.guest.family})`,
  ];
  const byOp = new Map<string, Map<string, { count: number; bytes: number }>>();
  for (const c of r.changes) {
    const actions = byOp.get(c.operation) ?? new Map<string, { count: number; bytes: number }>();
    const a = actions.get(c.action) ?? { count: 0, bytes: 0 };
    a.count++;
    a.bytes += c.bytes ?? 0;
    actions.set(c.action, a);
    byOp.set(c.operation, actions);
  }
  const verb = r.dryRun ? "would " : "";
  for (const op of r.operations) {
    if (op.skipped) {
      lines.push(`  ${op.name}: skipped (${op.skipped})`);
      continue;
    }
    const actions = byOp.get(op.name);
    if (!actions) continue;
    const parts = [...actions].map(
      ([action, a]) => `${verb}${action} ${a.count}${a.bytes ? ` (${formatBytes(a.bytes)})` : ""}`,
    );
    lines.push(`  ${op.name}: ${parts.join(", ")}`);
  }
  const bytes = r.changes.filter((c) => c.action !== "zero-free-space").reduce((n, c) => n + (c.bytes ?? 0), 0);
  lines.push(
    `${r.changes.length} change(s) by ${byOp.size} of ${r.operations.length} operation(s); ${formatBytes(bytes)} ${r.dryRun ? "would be " : ""}freed`,
  );
  for (const w of r.warnings) lines.push(`warning: ${w.replace(/\n/g, "\\n")}`);
  lines.push(
    `time: attach ${(r.timingsMs.attach / 1000).toFixed(1)} s, clean ${(r.timingsMs.clean / 1000).toFixed(2)} s, commit ${(r.timingsMs.commit / 1000).toFixed(1)} s`,
  );
  return lines.join("\n") + "\n";
}
