import type { Command } from "commander";
import {
  serviceConfigFrom,
  serviceHostOptions,
  untilStopSignal,
  type ServiceHostFlags,
} from "../service-host-options.js";
import { UsageError } from "../../util/errors.js";

export function registerWorker(program: Command): void {
  serviceHostOptions(
    program
      .command("worker")
      .description(
        "run jobs of a service on this host: from its BullMQ queue (--redis), or claimed from its shared job store " +
          "(--store postgres://…); SIGTERM hands running jobs over to other workers",
      ),
    "jobs run at once on this host (default 2)",
  ).action(async (flags: ServiceHostFlags) => {
    const config = await serviceConfigFrom(flags);
    if (!config.redis && !config.store) {
      throw new UsageError(
        "a worker needs the service's queue or store: --redis URL or --store LOCATION (or --config)",
      );
    }
    if (config.workers.slots === 0) throw new UsageError("--slots 0: a worker with no slot would take no job");
    const log = (line: string) => process.stderr.write(`worker: ${line}\n`);
    const { startServiceHost } = await import("../../service/service-host.js");
    const host = await startServiceHost(config, { api: false, log });
    const signal = await untilStopSignal();
    log(`${signal}: no more jobs taken; running ones have ${config.workers.stopSeconds} s, then go to other workers`);
    await host.close();
  });
}
