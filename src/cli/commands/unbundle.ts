import type { Command } from "commander";
import { basename, dirname } from "node:path";
import { mkdir } from "node:fs/promises";
import { UsageError } from "../../util/errors.js";
import { formatBytes } from "../../util/human.js";
import { runCommand } from "../run-command.js";
import { FILE_UNDO_SECONDS } from "../interrupts.js";
import { DirectoryBundleStore } from "../../formats/bundle/directory-bundle-store.js";
import { readPrivateKey, readPublicKey } from "../../formats/bundle/bundle-keys.js";
import { readBundle, type ReadBundleResult } from "../../formats/bundle/read-bundle.js";
import { fromEnvironment } from "./bundle-credentials.js";
import { bucketStore } from "./bundle-bucket.js";

interface UnbundleFlags {
  manifest: string;
  source?: string;
  destination?: string;
  privatekey?: string;
  cert?: string;
  outputFormat?: string;
  bucket?: string;
  cloud: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerUnbundle(program: Command): void {
  program
    .command("unbundle")
    .description(
      "rebuild the image of a bundle as euca-unbundle does, after verifying the manifest's signature and every " +
        "part's digest; the image takes its name only once complete and checked",
    )
    .requiredOption("-m, --manifest <file>", "the bundle's manifest (<prefix>.manifest.xml)")
    .option("-s, --source <dir>", "the folder holding the parts (default: the manifest's folder)")
    .option("-d, --destination <dir>", "where the image is written, under its bundled name (default: .)")
    .option("-k, --privatekey <file>", "the user's or the cloud's PEM private key (default $EC2_PRIVATE_KEY)")
    .option(
      "-c, --cert <file>",
      "the bundling user's certificate, to verify the signature (default $EC2_CERT; else the key's own public half)",
    )
    .option("-O, --output-format <fmt>", "write the image in this format (raw by default; qcow2, vmdk, vhd, …)")
    .option(
      "--bucket <bucket[/prefix]>",
      "read the bundle straight from this bucket (-m then names the manifest in it)",
    )
    .option(
      "--cloud <name>",
      "with --bucket: the EC2-family cloud (env-euca: the eucarc variables; euca:REGION; aws, aws:PROFILE)",
      "env-euca",
    )
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress bar")
    .action(async (flags: UnbundleFlags) => {
      const env = fromEnvironment();
      const privateKey = flags.privatekey ?? env.privateKey;
      if (!privateKey) throw new UsageError("unbundle needs -k PRIVKEY (or $EC2_PRIVATE_KEY)");
      const cert = flags.cert ?? env.cert;
      const source = flags.source ?? dirname(flags.manifest);
      const destination = flags.destination ?? ".";
      await runCommand(
        {
          command: "unbundle",
          undoSeconds: FILE_UNDO_SECONDS,
          json: !!flags.json,
          quiet: !!flags.quiet,
          summaryTo: "stderr",
          summary: (r: ReadBundleResult) =>
            `wrote ${r.output} (${r.outputFormat}): ${formatBytes(r.imageSize)} from ${r.parts} part(s), signature and digests verified, ` +
            `${r.seconds.toFixed(2)} s`,
        },
        async ({ signal, onProgress }) => {
          const [key, certificate] = await Promise.all([
            readPrivateKey(privateKey),
            cert === undefined ? undefined : readPublicKey(cert),
          ]);
          if (flags.bucket !== undefined && flags.source !== undefined) {
            throw new UsageError("-s and --bucket: the parts are in a folder or in a bucket, not both");
          }
          const bucket = await bucketStore(flags);
          await mkdir(destination, { recursive: true });
          return readBundle({
            // As euca-unbundle: the manifest where -m says, the parts in -s; or both in the bucket.
            store: bucket ?? new DirectoryBundleStore(source),
            manifestStore: bucket ?? new DirectoryBundleStore(dirname(flags.manifest)),
            manifestName: basename(flags.manifest),
            privateKey: key,
            userCertificate: certificate,
            destination,
            outputFormat: flags.outputFormat,
            signal,
            onProgress,
          });
        },
      );
    });
}
