import type { Command } from "commander";
import { noRebootOption } from "../no-reboot-option.js";
import { UsageError } from "../../formats/errors.js";
import {
  bootableOptions,
  bootableRequest,
  cloudDestination,
  jobOptions,
  jobSettings,
  runJobRequest,
  type BootableJobFlags,
  type CloudImageFlags,
} from "./workflow-output.js";
import { repeatable } from "../repeatable.js";
import { cloudOptions } from "../cloud-options.js";
import { cloudKeyOptions } from "../cloud-key-options.js";

interface MigrateFlags extends CloudImageFlags, BootableJobFlags {
  from: string;
  to: string;
  image?: string;
  instance?: string;
  name?: string;
  serverSide?: boolean;
}

export function registerMigrate(program: Command): void {
  const command = jobOptions(
    noRebootOption(
      cloudKeyOptions(
        cloudOptions(program.command("migrate"), {
          from: "source (see `chromogenic clouds`): NAME[/REGION], env, local, local:/dir",
          to: "destination, named the same way",
        })
          .description(
            "copy an image (or a snapshot of an instance) from one cloud, region, project or local store to another, " +
              "streaming where it can, in the destination's preferred disk format unless --format",
          )
          .option("--image <image>", "the source image's id or name")
          .option("--instance <instance>", "snapshot this instance and migrate the snapshot (deleted afterwards)")
          .option("--format <format>", "disk format in the destination")
          .option("--name <name>", "the new image's name (default: the source's)")
          .option("--public", "make the new image public (default private)")
          .option("--property <key=value>", "set a property on the new image (repeatable)", repeatable, [])
          .option("--share <project>", "share the new image with this project as a member (repeatable)", repeatable, [])
          .option(
            "--server-side",
            "between regions of one OpenStack: let the destination's Glance copy the image itself (glance-download) " +
              "when it offers that, else stream",
          ),
      ),
    ),
  );
  bootableOptions(
    command,
    "copy a Xen source as it is (by default a source its store marks as a Xen guest is made bootable on a PC)",
  ).action(async (flags: MigrateFlags) => {
    if (!flags.image === !flags.instance) throw new UsageError("migrate needs exactly one of --image and --instance");
    await runJobRequest("migrate", flags, {
      kind: "migrate",
      source: { cloud: flags.from, image: flags.image, instance: flags.instance },
      destination: cloudDestination(
        flags,
        flags.to,
        flags.name ?? (flags.instance ? `${flags.instance}-image` : undefined),
      ),
      ...jobSettings(flags),
      bootable: bootableRequest("migrate", flags, "xen-source"),
      serverSide: flags.serverSide,
    });
  });
}
