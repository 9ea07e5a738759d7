/**
 * Where the distributed service's tests find Redis and PostgreSQL: the servers of test/infra/redis/start.sh and
 * test/infra/postgres/start.sh (scripts/test-all.sh starts both, on loopback and on the bridge of
 * test/infra/network/hosts.sh). URLs from CHROMOGENIC_TEST_REDIS_URL / CHROMOGENIC_TEST_POSTGRES_URL, else the
 * scripts' defaults. A test that needs one and finds it down fails with the command that starts it.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { PostgresJobStore } from "../../src/service/postgres-job-store.js";

export const REDIS_START = "bash test/infra/redis/start.sh start --bind $(bash test/infra/network/hosts.sh bridge)";
export const POSTGRES_START =
  "bash test/infra/postgres/start.sh start --bind $(bash test/infra/network/hosts.sh bridge)";

export const postgresUrl =
  process.env.CHROMOGENIC_TEST_POSTGRES_URL ?? "postgres://chromogenic:chromogenic-secret@127.0.0.1:15432/chromogenic";
export const redisUrl = process.env.CHROMOGENIC_TEST_REDIS_URL ?? "redis://:redis-secret@127.0.0.1:16379";

/** The same URL with another host: the bridge address that the namespaced "hosts" reach. */
export function onHost(url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString();
}

/** Throws, naming the start script, when PostgreSQL does not answer. */
export async function requirePostgres(): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (e) {
    throw new Error(
      `PostgreSQL is not reachable at ${new URL(postgresUrl).host} (${(e as Error).message}): start it with ` +
        `\`${POSTGRES_START}\``,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Throws, naming the start script, when Redis does not answer. */
export async function requireRedis(url = redisUrl): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let cause: Error | undefined;
  redis.on("error", (e: Error) => (cause = e));
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    const why = (cause ?? (e as Error)).message;
    throw new Error(`Redis is not reachable at ${new URL(url).host} (${why}): start it with \`${REDIS_START}\``);
  } finally {
    redis.disconnect();
  }
}

/** A name no other test run uses: a PostgreSQL schema, a BullMQ queue. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** A job store in a schema of its own; `drop` removes the schema. */
export async function openTestPostgresStore(
  schema = uniqueName("test"),
): Promise<{ store: PostgresJobStore; schema: string }> {
  await requirePostgres();
  return { store: await PostgresJobStore.open(postgresUrl, { schema }), schema };
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
