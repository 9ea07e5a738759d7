/**
 * The job store a location names: postgres://…[?schema=NAME] a PostgreSQL database (several API processes and
 * workers on other hosts share it), anything else a SQLite file (one host). Each is loaded only when named, so a service
 * on SQLite never loads the PostgreSQL client.
 */
import { join } from "node:path";
import { workflowStateDir } from "../workflows/job-state.js";
import type { JobStore } from "./job-store.js";
import { isDatabaseUrl } from "./service-config.js";

/** Where `serve` keeps its jobs when the configuration names no store. */
export function defaultStoreLocation(): string {
  return join(workflowStateDir(), "service", "jobs.sqlite");
}

export async function openJobStore(location: string = defaultStoreLocation()): Promise<JobStore> {
  if (isDatabaseUrl(location)) {
    const { PostgresJobStore } = await import("./postgres-job-store.js");
    // `?schema=NAME`: the service's tables in a schema of their own, so several services share one database.
    const url = new URL(location);
    const schema = url.searchParams.get("schema") ?? undefined;
    url.searchParams.delete("schema");
    return PostgresJobStore.open(url.toString(), schema ? { schema } : {});
  }
  const { SqliteJobStore } = await import("./sqlite-job-store.js");
  return SqliteJobStore.open(location);
}
