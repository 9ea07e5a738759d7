import type { Command } from "commander";
import { repeatable } from "../repeatable.js";
import { defaultTokensFile } from "../service-host-options.js";

interface TokenCreateFlags {
  tokens?: string;
  cloud: string[];
  kind: string[];
  admin?: boolean;
}

export function registerToken(program: Command): void {
  const token = program.command("token").description("the service's API tokens");
  token
    .command("create")
    .description("make a token for the service's API: printed once on stdout, stored only as its SHA-256")
    .argument("<name>", "who it is for (the owner of the jobs it submits, and the audit log's name)")
    .option("--tokens <file>", `the tokens file (default ${defaultTokensFile()})`)
    .option("--cloud <name>", "a cloud its jobs may name (repeatable; * for any)", repeatable, [])
    .option("--kind <kind>", "a job kind it may submit (repeatable; * for any)", repeatable, [])
    .option("--admin", "it sees and cancels every owner's jobs")
    .action(async (name: string, flags: TokenCreateFlags) => {
      const { addToken } = await import("../../service/api/tokens-file.js");
      const file = flags.tokens ?? defaultTokensFile();
      const made = await addToken(file, name, { clouds: flags.cloud, kinds: flags.kind, admin: flags.admin ?? false });
      process.stderr.write(`token "${name}" added to ${file}; it is shown this once:\n`);
      process.stdout.write(`${made}\n`);
    });
}
