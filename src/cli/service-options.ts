/**
 * `--server URL` and `--token-file FILE` (or $CHROMOGENIC_TOKEN): run a job command on a chromogenic service
 * instead of this host. The job is the same request a local run would start; the clouds, paths and
 * credentials it names are the service's, never sent from here.
 */
import type { Command } from "commander";
import { readFile } from "node:fs/promises";
import { UsageError } from "../util/errors.js";
import type { ServiceClient } from "../service/client/service-client.js";

export interface ServiceFlags {
  readonly server?: string;
  readonly tokenFile?: string;
}

export function serviceOptions<T extends Command>(command: T): T {
  return command
    .option("--server <url>", "run the job on this chromogenic service (`chromogenic serve`) and follow it here")
    .option(
      "--token-file <file>",
      "with --server: the bearer token, read from this file (else $CHROMOGENIC_TOKEN)",
    ) as T;
}

/** The client of `--server`, with the token of `--token-file` or $CHROMOGENIC_TOKEN. */
export async function serviceClient(flags: ServiceFlags): Promise<ServiceClient> {
  if (flags.server === undefined) throw new UsageError("this needs --server URL (a chromogenic service)");
  const { ServiceClient } = await import("../service/client/service-client.js");
  return new ServiceClient({ server: flags.server, token: await serviceToken(flags) });
}

async function serviceToken(flags: ServiceFlags): Promise<string | undefined> {
  if (flags.tokenFile === undefined) return process.env.CHROMOGENIC_TOKEN || undefined;
  let text: string;
  try {
    text = await readFile(flags.tokenFile, "utf8");
  } catch (e) {
    throw new UsageError(`--token-file ${flags.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }
  // The first line: a file written by `echo` ends with a newline that is no part of the token.
  const token = text.split(/\r?\n/)[0]!.trim();
  if (!token) throw new UsageError(`--token-file ${flags.tokenFile} is empty`);
  return token;
}

/** `--token-file` means nothing without `--server`: refused rather than silently running the job here. */
export function checkServiceFlags(flags: ServiceFlags): void {
  if (flags.tokenFile !== undefined && flags.server === undefined) throw new UsageError("--token-file needs --server");
}
