import type { Command } from "commander";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { UsageError } from "../../util/errors.js";
import { detectFormat, getDriver } from "../../formats/registry.js";
import { formatBytes } from "../../util/human.js";
import type { ProviderImage } from "../../providers/provider.js";
import { runCommand } from "../run-command.js";
import {
  cloudDestination,
  jobOptions,
  jobSettings,
  parseProperties,
  runJobRequest,
  type CloudImageFlags,
} from "./workflow-output.js";
import { repeatable } from "../repeatable.js";
import { cloudOptions } from "../cloud-options.js";
import { nodeCopyOptions } from "../node-copy-options.js";
import { noRebootOption } from "../no-reboot-option.js";
import { cloudKeyOptions } from "../cloud-key-options.js";
import { listOptions, printListing, type Columns, type ListFlags } from "../list-output.js";

interface ImageCreateFlags extends CloudImageFlags {
  cloud: string;
}

export function registerImage(program: Command): void {
  const image = program.command("image").description("images in a cloud or the local store");
  registerImageStoreCommands(image);
  jobOptions(
    cloudKeyOptions(
      nodeCopyOptions(
        noRebootOption(
          cloudOptions(image.command("create"), { cloud: "where the instance runs (see `chromogenic clouds`)" }),
        ),
      ),
    )
      .description(
        "make a new image from an instance: snapshot → download → (clean) → upload, private unless --public, " +
          "then delete the temporary snapshot",
      )
      .argument("<instance>", "the instance's id or name")
      .argument("<name>", "the new image's name")
      .option("--format <format>", "disk format of the new image (default: the snapshot's)")
      .option("--public", "make the new image public (default private)")
      .option("--property <key=value>", "set a property on the new image (repeatable)", repeatable, [])
      .option("--share <project>", "share the new image with this project as a member (repeatable)", repeatable, []),
  ).action(async (instance: string, name: string, flags: ImageCreateFlags) => {
    await runJobRequest("image create", flags, {
      kind: "image-create",
      source: { cloud: flags.cloud, instance },
      destination: cloudDestination(flags, flags.cloud, name),
      ...jobSettings(flags),
    });
  });
}

export function registerImageStoreCommands(image: Command): void {
  listOptions(cloudOptions(image.command("list"), { cloud: "the cloud or store (see `chromogenic clouds`)" }))
    .description("list the images of a cloud or store")
    .option("--json", "the list as one JSON line (a `done` event with `images`)")
    .action(async (flags: { cloud: string; json?: boolean } & ListFlags) => {
      const images: ProviderImage[] = [];
      for await (const i of (await cloudNames()).resolveCloud(flags.cloud).listImages()) images.push(i);
      const output = { command: "image list", json: !!flags.json, summary: renderImages } as const;
      printListing(output, { images }, images, IMAGE_COLUMNS, flags);
    });
  cloudOptions(image.command("upload"), { cloud: "the cloud or store" })
    .description("store a local image file as a new image (format detected from its content)")
    .argument("<file>", "the image file")
    .argument("<name>", "the new image's name")
    .option("-f, --format <format>", "its format, not detected (raw for a kernel or ramdisk, which are no disks)")
    .option("--public", "make it public (default private)")
    .option("--property <key=value>", "set a property (repeatable)", repeatable, [])
    .option("--json", "the new image as one JSON line (a `done` event)")
    .action(
      async (
        file: string,
        name: string,
        flags: { cloud: string; format?: string; public?: boolean; property?: string[]; json?: boolean },
      ) => {
        const format = flags.format ? getDriver(flags.format).name : (await detectFormat(file)).name;
        const size = (await stat(file)).size;
        await runCommand(
          {
            command: "image upload",
            json: !!flags.json,
            quiet: true,
            summary: (uploaded: ProviderImage) => uploaded.id,
          },
          async ({ signal }) =>
            (await cloudNames()).resolveCloud(flags.cloud).uploadImage(
              {
                name,
                diskFormat: format,
                sizeBytes: size,
                visibility: flags.public ? "public" : "private",
                properties: parseProperties(flags.property),
              },
              createReadStream(file, { highWaterMark: 2 ** 20 }),
              { signal },
            ),
        );
      },
    );
  cloudOptions(image.command("delete"), { cloud: "the cloud or store" })
    .description("delete an image")
    .argument("<image>", "the image's id or name")
    .action(async (idOrName: string, flags: { cloud: string }) => {
      const provider = (await cloudNames()).resolveCloud(flags.cloud);
      const found = await provider.getImage(idOrName);
      if (!found) throw new UsageError(`${provider.label}: no image "${idOrName}"`);
      await provider.deleteImage(found.id);
    });
}

/** The columns of `image list -f …`, titled as `openstack image list --long` titles them. */
const IMAGE_COLUMNS: Columns<ProviderImage> = {
  ID: (i) => i.id,
  Name: (i) => i.name,
  "Disk Format": (i) => i.diskFormat ?? null,
  Size: (i) => i.sizeBytes ?? null,
  Visibility: (i) => i.visibility,
  Status: (i) => i.rawStatus,
};

function renderImages({ images }: { images: readonly ProviderImage[] }): string {
  return images
    .map(
      (i) =>
        `${i.id}  ${i.name}  ${i.diskFormat ?? "?"}  ${i.sizeBytes === undefined ? "?" : formatBytes(i.sizeBytes)}  ` +
        `${i.visibility}  ${i.rawStatus}\n`,
    )
    .join("");
}

/** Loaded when a command runs: the providers (and their dependencies) stay out of every other command's start-up. */
function cloudNames() {
  return import("../../workflows/cloud-names.js");
}
