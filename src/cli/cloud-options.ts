import type { Command } from "commander";
import { UsageError } from "../util/errors.js";

type CloudFlag = "cloud" | "from" | "to";

/**
 * Adds `--cloud` (or `--from` and `--to`) with the defaults the openstack CLI has taught its users: the cloud
 * named by `--os-cloud`, else by OS_CLOUD. One of them must name it; which flag was missing is said in one line.
 */
export function cloudOptions<T extends Command>(command: T, flags: Readonly<Partial<Record<CloudFlag, string>>>): T {
  const names = Object.keys(flags) as CloudFlag[];
  for (const name of names) command.option(`--${name} <cloud>`, `${flags[name]} (default: --os-cloud, then OS_CLOUD)`);
  command.option("--os-cloud <cloud>", "the cloud by its clouds.yaml name, as the openstack CLI takes it");
  command.hook("preAction", (self) => {
    const given = self.opts<Record<string, string | undefined>>();
    for (const name of names) {
      const cloud = given[name] ?? given.osCloud ?? process.env.OS_CLOUD;
      if (!cloud) throw new UsageError(`--${name} is required (or --os-cloud NAME, or OS_CLOUD)`);
      self.setOptionValue(name, cloud);
    }
  });
  return command;
}
