/**
 * The job store on PostgreSQL (`pg`): the store when several API processes and workers on several hosts share
 * the jobs. The same contract as the SQLite store (test/service/job-store-contract.ts), with what a shared
 * server adds:
 * - Leases are kept on the database's clock (clock_timestamp()), never a host's: hosts whose clocks differ by
 *   seconds still agree on whose lease ran out.
 * - `claim` locks its candidate rows with FOR UPDATE SKIP LOCKED, so that workers claiming at once each get a
 *   different job without waiting for one another; `acquire` and every write by a holder are one UPDATE whose
 *   WHERE re-checks the holder, so a worker that lost its lease changes nothing.
 * - Submissions with an idempotency key are an INSERT … ON CONFLICT on the unique (owner, key) index: two
 *   retries racing on two API processes still make one job.
 * - Event numbers come from the job row's counter, taken and written in one statement.
 * The schema is made or migrated on open, under an advisory lock (two processes opening at once do it once).
 * The connection URL is only ever shown redacted (connection-url.ts).
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import type { ChromogenicEvent } from "../util/events.js";
import { redactUrl } from "./connection-url.js";
import type { JobFilter, JobOutcome, JobPage, JobStore, StoredEvent, SubmitRequest } from "./job-store.js";
import { SERVICE_JOB_STATES, type JobProgress, type ServiceJob, type ServiceJobState } from "./service-job.js";

/** Migrations in order; the schema's version is how many have run. Append, never edit one that shipped. */
const MIGRATIONS = [
  `CREATE TABLE jobs (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    kind text NOT NULL,
    spec json NOT NULL,
    owner text NOT NULL,
    idempotency_key text,
    state text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    finished_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    attempts integer NOT NULL DEFAULT 0,
    worker text,
    lease_until timestamptz,
    progress json,
    result json,
    error json,
    workflow_state json,
    event_count integer NOT NULL DEFAULT 0
  );
  CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
  CREATE INDEX jobs_state ON jobs (state, seq);
  CREATE INDEX jobs_owner ON jobs (owner, seq);
  CREATE TABLE events (
    job text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (job, seq)
  );`,
];

const COLUMNS =
  "seq, id, kind, spec, owner, state, created_at, started_at, finished_at, cancel_requested, attempts, worker, " +
  "progress, result, error";

/** Still takeable: `claim` and `acquire` change a job's holder only under this condition. */
const TAKEABLE = "(state = 'queued' OR (state = 'running' AND lease_until < clock_timestamp()))";
const TAKE_SET =
  "state = 'running', worker = $2, lease_until = clock_timestamp() + $3 * interval '1 millisecond', " +
  "attempts = attempts + 1, started_at = COALESCE(started_at, clock_timestamp())";

interface JobRow {
  seq: string;
  id: string;
  kind: string;
  spec: ServiceJob["spec"];
  owner: string;
  state: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  cancel_requested: boolean;
  attempts: number;
  worker: string | null;
  progress: JobProgress | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

export interface PostgresJobStoreOptions {
  /** A schema of its own in the database (made when missing), e.g. one per test; default: the search path's. */
  readonly schema?: string;
  /** Connections kept open at most. */
  readonly poolSize?: number;
}

export class PostgresJobStore implements JobStore {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects to `url` (postgres://user:password@host:port/database), making or migrating the schema. */
  static async open(url: string, options: PostgresJobStoreOptions = {}): Promise<PostgresJobStore> {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new RangeError(`a schema name is lower-case letters, digits and _ (not ${JSON.stringify(schema)})`);
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // A connection that breaks while idle (the server restarted) is dropped by the pool; without a listener
    // its error would end the process.
    pool.on("error", () => {});
    try {
      await migrate(pool, schema);
    } catch (e) {
      await pool.end().catch(() => {});
      throw new Error(`cannot open the job store at ${redactUrl(url)}: ${(e as Error).message}`, { cause: e });
    }
    return new PostgresJobStore(pool);
  }

  async submit(request: SubmitRequest): Promise<{ job: ServiceJob; created: boolean }> {
    const inserted = await this.pool.query<JobRow>(
      "INSERT INTO jobs (id, kind, spec, owner, idempotency_key, state) VALUES ($1, $2, $3, $4, $5, 'queued') " +
        `ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING ${COLUMNS}`,
      [randomUUID(), request.spec.kind, JSON.stringify(request.spec), request.owner, request.idempotencyKey ?? null],
    );
    if (inserted.rows[0]) return { job: toJob(inserted.rows[0]), created: true };
    const first = await this.pool.query<JobRow>(
      `SELECT ${COLUMNS} FROM jobs WHERE owner = $1 AND idempotency_key = $2`,
      [request.owner, request.idempotencyKey],
    );
    return { job: toJob(first.rows[0]!), created: false };
  }

  async get(id: string): Promise<ServiceJob | undefined> {
    const { rows } = await this.pool.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE id = $1`, [id]);
    return rows[0] && toJob(rows[0]);
  }

  async list(filter: JobFilter): Promise<JobPage> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (clause: string, value: unknown) => (
      args.push(value),
      where.push(clause.replace("?", `$${args.length}`))
    );
    if (filter.state) add("state = ?", filter.state);
    if (filter.kind) add("kind = ?", filter.kind);
    if (filter.owner) add("owner = ?", filter.owner);
    if (filter.cursor !== undefined) add("seq < ?", decodeCursor(filter.cursor));
    args.push(filter.limit + 1);
    const { rows } = await this.pool.query<JobRow>(
      `SELECT ${COLUMNS} FROM jobs` +
        (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
        ` ORDER BY seq DESC LIMIT $${args.length}`,
      args,
    );
    const more = rows.length > filter.limit;
    const page = rows.slice(0, filter.limit);
    return { jobs: page.map(toJob), ...(more ? { next: encodeCursor(page[page.length - 1]!.seq) } : {}) };
  }

  async countByState(): Promise<Record<ServiceJobState, number>> {
    const counts = Object.fromEntries(SERVICE_JOB_STATES.map((s) => [s, 0])) as Record<ServiceJobState, number>;
    const { rows } = await this.pool.query<{ state: ServiceJobState; n: string }>(
      "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state",
    );
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }

  async requestCancel(id: string): Promise<ServiceJob | undefined> {
    await this.pool.query(
      "UPDATE jobs SET cancel_requested = true, " +
        "state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, " +
        "finished_at = CASE WHEN state = 'queued' THEN clock_timestamp() ELSE finished_at END " +
        "WHERE id = $1 AND state IN ('queued', 'running')",
      [id],
    );
    return this.get(id);
  }

  async claim(
    worker: string,
    leaseMs: number,
    accepts?: (job: ServiceJob) => boolean,
  ): Promise<ServiceJob | undefined> {
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<JobRow>(
        `SELECT ${COLUMNS} FROM jobs WHERE ${TAKEABLE} ORDER BY seq LIMIT 64 FOR UPDATE SKIP LOCKED`,
      );
      for (const row of rows) {
        const job = toJob(row);
        if (accepts && !accepts(job)) continue;
        const updated = await client.query<JobRow>(`UPDATE jobs SET ${TAKE_SET} WHERE id = $1 RETURNING ${COLUMNS}`, [
          job.id,
          worker,
          leaseMs,
        ]);
        return toJob(updated.rows[0]!);
      }
      return undefined;
    });
  }

  async acquire(id: string, worker: string, leaseMs: number): Promise<ServiceJob | undefined> {
    const { rows } = await this.pool.query<JobRow>(
      `UPDATE jobs SET ${TAKE_SET} WHERE id = $1 AND ${TAKEABLE} RETURNING ${COLUMNS}`,
      [id, worker, leaseMs],
    );
    return rows[0] && toJob(rows[0]);
  }

  async renew(id: string, worker: string, leaseMs: number): Promise<boolean> {
    const changed = await this.pool.query(
      "UPDATE jobs SET lease_until = clock_timestamp() + $3 * interval '1 millisecond' " +
        "WHERE id = $1 AND worker = $2 AND state = 'running'",
      [id, worker, leaseMs],
    );
    return changed.rowCount === 1;
  }

  /**
   * Ends the lease at once, the job unfinished (its worker is stopping), so that the next claim or acquire takes
   * it over without waiting for the lease to run out; false when `worker` no longer holds it.
   */
  async release(id: string, worker: string): Promise<boolean> {
    const changed = await this.pool.query(
      "UPDATE jobs SET lease_until = '-infinity' WHERE id = $1 AND worker = $2 AND state = 'running'",
      [id, worker],
    );
    return changed.rowCount === 1;
  }

  async update(
    id: string,
    worker: string,
    patch: { progress?: JobProgress; workflowState?: unknown },
  ): Promise<boolean> {
    const changed = await this.pool.query(
      "UPDATE jobs SET progress = COALESCE($3::json, progress), workflow_state = COALESCE($4::json, workflow_state) " +
        "WHERE id = $1 AND worker = $2 AND state = 'running'",
      [
        id,
        worker,
        patch.progress ? JSON.stringify(patch.progress) : null,
        patch.workflowState !== undefined ? JSON.stringify(patch.workflowState) : null,
      ],
    );
    return changed.rowCount === 1;
  }

  async workflowState(id: string): Promise<unknown> {
    const { rows } = await this.pool.query<{ workflow_state: unknown }>(
      "SELECT workflow_state FROM jobs WHERE id = $1",
      [id],
    );
    return rows[0]?.workflow_state ?? undefined;
  }

  async finish(id: string, worker: string, outcome: JobOutcome): Promise<boolean> {
    const changed = await this.pool.query(
      "UPDATE jobs SET state = $3, finished_at = clock_timestamp(), result = $4, error = $5, lease_until = NULL " +
        "WHERE id = $1 AND worker = $2 AND state = 'running'",
      [
        id,
        worker,
        outcome.state,
        outcome.result ? JSON.stringify(outcome.result) : null,
        outcome.error ? JSON.stringify(outcome.error) : null,
      ],
    );
    return changed.rowCount === 1;
  }

  async appendEvent(id: string, event: ChromogenicEvent): Promise<number> {
    const { rows } = await this.pool.query<{ seq: number }>(
      "WITH counted AS (UPDATE jobs SET event_count = event_count + 1 WHERE id = $1 RETURNING event_count) " +
        "INSERT INTO events (job, seq, body) SELECT $1, event_count, $2 FROM counted RETURNING seq",
      [id, JSON.stringify(event)],
    );
    if (!rows[0]) throw new Error(`no job ${id}`);
    return rows[0].seq;
  }

  async events(id: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{ seq: number; body: ChromogenicEvent }>(
      "SELECT seq, body FROM events WHERE job = $1 AND seq > $2 ORDER BY seq LIMIT $3",
      [id, afterSeq, limit],
    );
    return rows.map((r) => ({ seq: r.seq, event: r.body }));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

async function migrate(pool: pg.Pool, schema: string | undefined): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('chromogenic job store schema'))");
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query("CREATE TABLE IF NOT EXISTS job_store_version (version integer NOT NULL)");
    const { rows } = await client.query<{ version: number }>("SELECT version FROM job_store_version");
    const version = rows[0]?.version ?? 0;
    if (version > MIGRATIONS.length) {
      throw new Error(`its schema is version ${version}, newer than this chromogenic knows (${MIGRATIONS.length})`);
    }
    for (const migration of MIGRATIONS.slice(version)) await client.query(migration);
    await client.query("DELETE FROM job_store_version");
    await client.query("INSERT INTO job_store_version (version) VALUES ($1)", [MIGRATIONS.length]);
  });
}

async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

/** Cursors are opaque to clients: the last row's number, so a page is an index range scan however deep. */
function encodeCursor(seq: string): string {
  return Buffer.from(seq).toString("base64url");
}

function decodeCursor(cursor: string): string {
  const seq = Buffer.from(cursor, "base64url").toString();
  if (!/^[0-9]{1,18}$/.test(seq)) throw new RangeError("the cursor is not one this service gave");
  return seq;
}

function toJob(row: JobRow): ServiceJob {
  return {
    id: row.id,
    kind: row.kind,
    spec: row.spec,
    owner: row.owner,
    state: row.state as ServiceJobState,
    createdAt: row.created_at.toISOString(),
    ...(row.started_at ? { startedAt: row.started_at.toISOString() } : {}),
    ...(row.finished_at ? { finishedAt: row.finished_at.toISOString() } : {}),
    cancelRequested: row.cancel_requested,
    attempts: row.attempts,
    ...(row.worker ? { worker: row.worker } : {}),
    ...(row.progress ? { progress: row.progress } : {}),
    ...(row.result ? { result: row.result } : {}),
    ...(row.error ? { error: row.error } : {}),
  };
}
