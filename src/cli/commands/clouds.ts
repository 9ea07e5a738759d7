import type { Command } from "commander";

export function registerClouds(program: Command): void {
  program
    .command("clouds")
    .description(
      "list the image stores a --cloud/--from/--to name can reach: the local store, clouds.yaml entries, OS_* " +
        "variables (never their secrets)",
    )
    .option("--json", "one JSON array")
    .action(async (flags: { json?: boolean }) => {
      const { listClouds } = await import("../../workflows/cloud-names.js");
      const clouds = listClouds();
      if (flags.json) {
        process.stdout.write(JSON.stringify(clouds, null, 2) + "\n");
        return;
      }
      for (const c of clouds) {
        const where =
          c.kind === "local"
            ? c.directory
            : [
                c.authUrl,
                c.region && `region ${c.region}`,
                c.project && `project ${c.project}`,
                c.user && `user ${c.user}`,
              ]
                .filter(Boolean)
                .join(", ");
        process.stdout.write(`${c.name.padEnd(16)} ${c.kind.padEnd(9)} ${where}  (${c.source})\n`);
      }
      process.stdout.write("also: local:/DIR for a store in DIR, NAME/REGION for another region of a cloud\n");
    });
}
