import type { Command } from "commander";
import { inspectImage, type ImageInspection } from "../../guest/inspect/inspect-image.js";
import { cleanupGuestLeftovers } from "../../guest/journal/leftover-cleanup.js";
import { allowedReferences } from "../allowed-references.js";
import { runCommand } from "../run-command.js";
import { repeatable } from "../repeatable.js";
import { requireRoot } from "../../util/require-root.js";

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
    .option("--allow-reference <path>", "allow the image to open this backing/data file (repeatable)", repeatable, [])
    .action(async (image: string, opts: InspectFlags) => {
      requireRoot("inspect");
      await runCommand(
        { command: "inspect", json: !!opts.json, quiet: true, summary: renderInspection },
        ({ signal }) =>
          inspectImage(image, {
            format: opts.format,
            references: allowedReferences(opts.allowReference),
            signal,
          }),
      );
    });

  program
    .command("guest")
    .description("guest access housekeeping")
    .command("cleanup")
    .description("undo the mounts, LVM activations and loop devices a crashed run left (from its journal)")
    .option("--force", "also undo journals of runs that still seem alive")
    .action(async (opts: { force?: boolean }) => {
      requireRoot("guest cleanup");
      for (const j of await cleanupGuestLeftovers(opts)) {
        if (j.outcome === "skipped")
          process.stderr.write(`skipping ${j.journal}: process ${j.pid} is still running (--force to undo anyway)\n`);
        else if (j.outcome === "undone")
          process.stderr.write(`undid ${j.changes} change(s) left by process ${j.pid}\n`);
        else {
          process.stderr.write(`${j.error}\n`);
          process.exitCode = 1;
        }
      }
    });
}

function renderInspection(r: ImageInspection): string {
  const d = r.distribution;
  const lines = [
    `image: ${r.image}`,
    `distribution: ${d.name} (id ${d.id}, version ${d.version}, family ${d.family})`,
    `package manager: ${r.packageManager}`,
    `init system: ${r.initSystem}`,
    `cloud-init: ${r.cloudInit ? "installed" : "not found"}`,
    `filesystems: ${r.filesystems.map((f) => `${f.mountPoint} (${f.type})`).join(", ")}`,
    `kernels: ${r.kernels.length ? "" : "none found"}`,
    ...r.kernels.map((k) => `    ${k.version}: ${k.kernel}, initramfs ${k.initramfs ?? "missing"}`),
    `users: ${r.users.length ? "" : "none"}`,
    ...r.users.map((u) => `    ${u.name} (uid ${u.uid}) home ${u.home}${u.homeExists ? "" : " (missing)"}`),
  ];
  return lines.join("\n") + "\n";
}
