/**
 * The options `serve` and `worker` share: a configuration file (service-config.ts), and the settings a
 * command line may give or override without one — the job store, Redis, the workers' slots and clouds. Without
 * a file, `serve` keeps its tokens in the state directory and makes an administrator's token on its first
 * start (shown once, stored hashed), so `chromogenic serve` alone is a working service.
 */
import type { Command } from "commander";
import { join } from "node:path";
import { UsageError } from "../util/errors.js";
import { workflowStateDir } from "../workflows/job-state.js";
import { repeatable } from "./repeatable.js";
import type { ServiceConfig } from "../service/service-config.js";

export interface ServiceHostFlags {
  config?: string;
  store?: string;
  redis?: string;
  queue?: string;
  slots?: string;
  cloud: string[];
  workDir?: string;
  allowRead: string[];
  allowWrite: string[];
}

export function serviceHostOptions(command: Command, slotsHelp: string): Command {
  return command
    .option("--config <file>", "the service's configuration (YAML; docs/SERVICE.md)")
    .option("--store <location>", "the job store: a SQLite file, or postgres://… shared by several hosts")
    .option("--redis <url>", "queue jobs through BullMQ on this Redis (redis://[:password@]host:port)")
    .option("--queue <name>", "the BullMQ queue's name, when several services share one Redis")
    .option("--slots <n>", slotsHelp)
    .option(
      "--cloud <name>",
      "a cloud this host reaches (repeatable; a prefix may end in *); all by default",
      repeatable,
      [],
    )
    .option("--work-dir <dir>", "where jobs keep their temporary files")
    .option("--allow-read <dir>", "a folder jobs may read files from (repeatable)", repeatable, [])
    .option("--allow-write <dir>", "a folder jobs may write files into (repeatable)", repeatable, []);
}

/** The configuration: the file's, else the defaults, with the command line's settings over them. */
export async function serviceConfigFrom(flags: ServiceHostFlags): Promise<ServiceConfig> {
  const { readServiceConfig, ServiceConfigSchema } = await import("../service/service-config.js");
  const { z } = await import("zod");
  const base = flags.config
    ? await readServiceConfig(flags.config)
    : ServiceConfigSchema.parse({ api: { tokens: defaultTokensFile() } });
  const slots = flags.slots === undefined ? undefined : Number(flags.slots);
  if (slots !== undefined && (!Number.isInteger(slots) || slots < 0 || slots > 256)) {
    throw new UsageError(`--slots ${flags.slots}: a whole number from 0 to 256`);
  }
  const merged = {
    ...base,
    // Workers check a job's paths again before it runs: they need the same folders as the API.
    folders: {
      read: [...base.folders.read, ...flags.allowRead],
      write: [...base.folders.write, ...flags.allowWrite],
    },
    ...(flags.store ? { store: flags.store } : {}),
    ...(flags.redis ? { redis: flags.redis } : {}),
    ...(flags.queue ? { queue: flags.queue } : {}),
    workers: {
      ...base.workers,
      ...(slots !== undefined ? { slots } : {}),
      ...(flags.cloud.length ? { clouds: flags.cloud } : {}),
      ...(flags.workDir ? { workDir: flags.workDir } : {}),
    },
  };
  const checked = ServiceConfigSchema.safeParse(merged);
  if (!checked.success) throw new UsageError(`the service's settings: ${z.prettifyError(checked.error)}`);
  return checked.data;
}

/** Where `serve` keeps its tokens when no configuration names a file. */
export function defaultTokensFile(): string {
  return join(workflowStateDir(), "service", "tokens.yaml");
}

/** Resolves once SIGTERM or SIGINT arrives (then a second one ends the process at once). */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      process.once("SIGTERM", () => process.exit(143));
      process.once("SIGINT", () => process.exit(130));
      resolve(signal);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
