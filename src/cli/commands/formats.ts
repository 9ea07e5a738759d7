import type { Command } from "commander";
import { listDrivers } from "../../formats/registry.js";
import { describeCreateOptions } from "../../formats/engine/create-option-docs.js";
import { optionLine } from "../option-listing.js";
import { seekDataAddonLoaded } from "../../formats/io/seek-data.js";
import { nativeZstdBatch } from "../../formats/engine/native-zstd-batch.js";
import { nativeInflateBatch } from "../../formats/engine/native-inflate-batch.js";
import { largeRequestsAreSplit } from "../../formats/io/positional-io.js";
import { fileLockAddon } from "../../formats/io/image-locks.js";
import { fileNamesAddonLoaded } from "../../formats/io/replacing-output.js";
import { printResult } from "../run-command.js";

export function registerFormats(program: Command): void {
  program
    .command("formats")
    .description("list the image formats chromogenic reads and writes, with their -o options")
    .option("--json", "the list as one JSON line (a `done` event with `formats`)")
    .action(async (opts: { json?: boolean }) => {
      printResult({ command: "formats", json: !!opts.json, summary: renderFormats }, await listing());
    });
}

/** Every driver with its options, and which fast paths this installation has (scripts/build-native.sh). */
async function listing() {
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
  const native = {
    seekData: seekDataAddonLoaded(),
    largeRequests: largeRequestsAreSplit(),
    zstdBatches: nativeZstdBatch() !== null,
    inflateBatches: nativeInflateBatch() !== null,
    outputNames: fileNamesAddonLoaded(),
    imageLocks: fileLockAddon() !== null,
  };
  return { formats, native };
}

function renderFormats({ formats, native }: Awaited<ReturnType<typeof listing>>): string {
  let text = "";
  for (const f of formats) {
    const aka = f.aliases.length ? ` (also ${f.aliases.join(", ")})` : "";
    text += `${f.name}${aka}${f.writable ? "" : " (read-only)"}: ${f.description}\n`;
    for (const o of f.options) text += optionLine("-o", o);
    for (const o of f.openOptions) text += optionLine("--input-option", o);
  }
  // Without the native helpers results are the same, conversions slower; without the lock helper, images are
  // not locked.
  const yesNo = (loaded: boolean) => (loaded ? "built" : "not built, slower fallback");
  return (
    text +
    `native helpers: SEEK_DATA ${yesNo(native.seekData)}; large reads and writes ${yesNo(native.largeRequests)}; ` +
    `zstd batches ${yesNo(native.zstdBatches)}; zlib inflate batches ${yesNo(native.inflateBatches)}; ` +
    `output names ${yesNo(native.outputNames)}; ` +
    `image locks ${native.imageLocks ? "built" : "not built, images are not locked"}\n`
  );
}
