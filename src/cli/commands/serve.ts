import type { Command } from "commander";
import { access } from "node:fs/promises";
import { UsageError } from "../../util/errors.js";
import {
  defaultTokensFile,
  serviceConfigFrom,
  serviceHostOptions,
  untilStopSignal,
  type ServiceHostFlags,
} from "../service-host-options.js";

interface ServeFlags extends ServiceHostFlags {
  listen?: string;
}

export function registerServe(program: Command): void {
  serviceHostOptions(
    program
      .command("serve")
      .description(
        "run the HTTP API (jobs, their events, OpenAPI, metrics, a web page) with workers beside it; with --redis, " +
          "workers on other hosts (`chromogenic worker`) take jobs too",
      )
      .option("--listen <host:port>", "where the API listens (default 127.0.0.1:8470)"),
    "jobs run at once in this process (default 2; 0: the API only)",
  ).action(async (flags: ServeFlags) => {
    const config = await serviceConfigFrom(flags);
    const listen = flags.listen ? parseListen(flags.listen) : {};
    const served = { ...config, api: { ...config.api, ...listen } };
    const log = (line: string) => process.stderr.write(`serve: ${line}\n`);
    if (!flags.config && !(await exists(served.api.tokens))) {
      const { addToken } = await import("../../service/api/tokens-file.js");
      const token = await addToken(served.api.tokens, "admin", { clouds: ["*"], kinds: ["*"], admin: true });
      log(`first start: an administrator's token, shown this once (stored hashed in ${defaultTokensFile()}):`);
      process.stdout.write(`${token}\n`);
    }
    const { startServiceHost } = await import("../../service/service-host.js");
    const host = await startServiceHost(served, { api: true, log });
    const signal = await untilStopSignal();
    log(`${signal}: stopping (running jobs have ${served.workers.stopSeconds} s, then resume elsewhere)`);
    await host.close();
  });
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen ${text}: HOST:PORT, e.g. 0.0.0.0:8470`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1", port };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
