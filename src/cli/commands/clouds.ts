import type { Command } from "commander";
import type { ConfiguredCloud } from "../../workflows/cloud-names.js";
import { listOptions, printListing, type Columns, type ListFlags } from "../list-output.js";

export function registerClouds(program: Command): void {
  listOptions(program.command("clouds"))
    .description(
      "list the image stores a --cloud/--from/--to name can reach: the local store, clouds.yaml entries, OS_* " +
        "variables, euca2ools regions (euca:REGION), eucarc variables (env-euca), AWS profiles (aws:PROFILE) and " +
        "AWS_* variables (aws), with how each authenticates (never their secrets)",
    )
    .option("--json", "the list as one JSON line (a `done` event with `clouds`)")
    .action(async (flags: { json?: boolean } & ListFlags) => {
      const { listClouds } = await import("../../workflows/cloud-names.js");
      const clouds = listClouds();
      const output = { command: "clouds", json: !!flags.json, summary: renderClouds } as const;
      printListing(output, { clouds }, clouds, CLOUD_COLUMNS, flags);
    });
}

const CLOUD_COLUMNS: Columns<ConfiguredCloud> = {
  Name: (c) => c.name,
  Kind: (c) => c.kind,
  Where: (c) => (c.kind === "local" ? c.directory : (c.authUrl ?? c.ec2Url ?? c.auth)) ?? null,
  Region: (c) => (c.kind === "local" ? null : (c.region ?? null)),
  Source: (c) => c.source,
};

function renderClouds({ clouds }: { clouds: readonly ConfiguredCloud[] }): string {
  const lines = clouds.map((c) => {
    const where =
      c.kind === "local"
        ? c.directory
        : [
            c.authUrl ?? c.ec2Url ?? c.auth,
            c.s3Url && `S3 ${c.s3Url}`,
            c.region && `region ${c.region}`,
            c.project && `project ${c.project}`,
            c.user && `user ${c.user}`,
            c.ec2Url && c.auth,
          ]
            .filter(Boolean)
            .join(", ");
    return `${c.name.padEnd(16)} ${c.kind.padEnd(10)} ${where}  (${c.source})`;
  });
  lines.push("also: local:/DIR for a store in DIR, NAME/REGION for another region of a cloud (aws:PROFILE/REGION)");
  return lines.join("\n") + "\n";
}
