import type { Command } from "commander";
import { listDrivers } from "../../formats/registry.js";
import { describeCreateOptions } from "../../formats/engine/create-option-docs.js";
import { optionLine } from "../option-listing.js";
import { seekDataAddonLoaded } from "../../formats/io/seek-data.js";
import { nativeZstdBatch } from "../../formats/engine/native-zstd-batch.js";
import { largeRequestsAreSplit } from "../../formats/io/positional-io.js";
import { fileLockAddon } from "../../formats/io/image-locks.js";
import { fileNamesAddonLoaded } from "../../formats/io/replacing-output.js";

export function registerFormats(program: Command): void {
  program
    .command("formats")
    .description("list the image formats chromogenic reads and writes, with their -o options")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const formats = await Promise.all(
        listDrivers().map(async (d) => ({
          name: d.name,
          description: d.description,
          writable: d.create !== undefined,
          aliases: d.aliases ?? [],
          options: await describeCreateOptions(d),
          openOptions: d.openOptions ?? [],
        })),
      );
      if (opts.json) {
        process.stdout.write(JSON.stringify(formats, null, 2) + "\n");
        return;
      }
      for (const f of formats) {
        const aka = f.aliases.length ? ` (also ${f.aliases.join(", ")})` : "";
        process.stdout.write(`${f.name}${aka}${f.writable ? "" : " (read-only)"}: ${f.description}\n`);
        for (const o of f.options) process.stdout.write(optionLine("-o", o));
        for (const o of f.openOptions) process.stdout.write(optionLine("--input-option", o));
      }
      // Which fast paths this installation has (scripts/build-native.sh): without them results are the same,
      // conversions slower; without the lock helper, images are not locked.
      const yesNo = (loaded: boolean) => (loaded ? "built" : "not built, slower fallback");
      process.stdout.write(
        `native helpers: SEEK_DATA ${yesNo(seekDataAddonLoaded())}; large reads and writes ${yesNo(largeRequestsAreSplit())}; ` +
          `zstd batches ${yesNo(nativeZstdBatch() !== null)}; output names ${yesNo(fileNamesAddonLoaded())}; ` +
          `image locks ${fileLockAddon() ? "built" : "not built, images are not locked"}\n`,
      );
    });
}
