import type { Command } from "commander";
import { openGuest } from "../../guest/guest-session.js";
import { inspectGuest, type GuestInspection } from "../../guest/inspect/inspect-guest.js";
import { GuestJournal } from "../../guest/journal/guest-journal.js";
import { allowedReferences } from "../allowed-references.js";
import { runCommand } from "../run-command.js";

interface InspectFlags {
  format?: string;
  json?: boolean;
  allowReference?: string[];
}

/** `inspect IMAGE` and `guest cleanup`: the guest-access commands. */
export function registerGuest(program: Command): void {
  program
    .command("inspect")
    .description("mount an image's guest read-only and describe it: distribution, packages, init, kernels, users")
    .argument("<image>", "image file (any format chromogenic reads)")
    .option("-f, --format <fmt>", "skip detection and open as this format")
    .option("--json", "the description as one JSON line (a `done` event)")
    .option("--allow-reference <path...>", "allow the image to open this backing/data file")
    .action(async (image: string, opts: InspectFlags) => {
      await runCommand(
        { command: "inspect", json: !!opts.json, quiet: true, summary: renderInspection },
        async ({ signal }) => {
          const guest = await openGuest(image, {
            readOnly: true,
            format: opts.format,
            references: allowedReferences(opts.allowReference),
            signal,
          });
          let report: GuestInspection;
          try {
            report = await inspectGuest(guest.mounted.root);
          } finally {
            await guest.close();
          }
          const filesystems = guest.mounted.mounts.map((m) => ({ mountPoint: m.guestPath, type: m.type }));
          return { image, filesystems, ...report };
        },
      );
    });

  program
    .command("guest")
    .description("guest access housekeeping")
    .command("cleanup")
    .description("undo the mounts, LVM activations and loop devices a crashed run left (from its journal)")
    .option("--force", "also undo journals of runs that still seem alive")
    .action(async (opts: { force?: boolean }) => {
      let failures = 0;
      for (const path of await GuestJournal.list()) {
        const { journal, pid } = await GuestJournal.load(path);
        if (!opts.force && pid !== process.pid && isAlive(pid)) {
          process.stderr.write(`skipping ${path}: process ${pid} is still running (--force to undo anyway)\n`);
          continue;
        }
        const count = journal.pending.length;
        try {
          await journal.undoAll();
          process.stderr.write(`undid ${count} change(s) left by process ${pid}\n`);
        } catch (e) {
          failures++;
          process.stderr.write(`${(e as Error).message}\n`);
        }
      }
      if (failures) process.exitCode = 1;
    });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function renderInspection(
  r: GuestInspection & { image: string; filesystems: Array<{ mountPoint: string; type: string }> },
): string {
  const { image, filesystems } = r;
  const d = r.distribution;
  const lines = [
    `image: ${image}`,
    `distribution: ${d.name} (id ${d.id}, version ${d.version}, family ${d.family})`,
    `package manager: ${r.packageManager}`,
    `init system: ${r.initSystem}`,
    `cloud-init: ${r.cloudInit ? "installed" : "not found"}`,
    `filesystems: ${filesystems.map((f) => `${f.mountPoint} (${f.type})`).join(", ")}`,
    `kernels: ${r.kernels.length ? "" : "none found"}`,
    ...r.kernels.map((k) => `    ${k.version}: ${k.kernel}, initramfs ${k.initramfs ?? "missing"}`),
    `users: ${r.users.length ? "" : "none"}`,
    ...r.users.map((u) => `    ${u.name} (uid ${u.uid}) home ${u.home}${u.homeExists ? "" : " (missing)"}`),
  ];
  return lines.join("\n") + "\n";
}
