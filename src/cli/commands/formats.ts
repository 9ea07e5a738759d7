import type { Command } from "commander";
import { listDrivers } from "../../formats/registry.js";

export function registerFormats(program: Command): void {
  program
    .command("formats")
    .description("list the image formats chromogenic reads and writes, with their -o options")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => {
      const formats = listDrivers().map((d) => ({
        name: d.name,
        description: d.description,
        writable: d.create !== undefined,
        options: d.createOptions ?? [],
      }));
      if (opts.json) {
        process.stdout.write(JSON.stringify(formats, null, 2) + "\n");
        return;
      }
      for (const f of formats) {
        process.stdout.write(`${f.name}${f.writable ? "" : " (read-only)"}: ${f.description}\n`);
        for (const o of f.options) {
          const extra = [o.values && `values: ${o.values}`, o.default && `default: ${o.default}`].filter(Boolean);
          process.stdout.write(`    -o ${o.name}  ${o.description}${extra.length ? ` (${extra.join("; ")})` : ""}\n`);
        }
      }
    });
}
