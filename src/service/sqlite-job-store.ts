/**
 * The job store in one SQLite file (node:sqlite, no native dependency): `chromogenic serve`'s store when one API
 * process serves. WAL mode, so readers (the API's listings) never wait for the workers' writes; every change is
 * one statement or one transaction, so a process killed at any point leaves the file consistent. node:sqlite is
 * synchronous: each call is short (an indexed lookup or one row written), and the API's 95th percentile with
 * 10,000 jobs stored is measured in bench/service-bench.ts.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { ChromogenicEvent } from "../util/events.js";
import type { JobFilter, JobOutcome, JobPage, JobStore, StoredEvent, SubmitRequest } from "./job-store.js";
import { SERVICE_JOB_STATES, type JobProgress, type ServiceJob, type ServiceJobState } from "./service-job.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL,
  owner TEXT NOT NULL,
  idempotency_key TEXT,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker TEXT,
  lease_until INTEGER,
  progress TEXT,
  result TEXT,
  error TEXT,
  workflow_state TEXT,
  event_count INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, seq);
CREATE TABLE IF NOT EXISTS events (
  job TEXT NOT NULL,
  seq INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (job, seq)
) WITHOUT ROWID;
`;

interface JobRow {
  seq: number;
  id: string;
  kind: string;
  spec: string;
  owner: string;
  state: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  cancel_requested: number;
  attempts: number;
  worker: string | null;
  progress: string | null;
  result: string | null;
  error: string | null;
}

const COLUMNS =
  "seq, id, kind, spec, owner, state, created_at, started_at, finished_at, cancel_requested, attempts, worker, " +
  "progress, result, error";

export class SqliteJobStore implements JobStore {
  private readonly db: DatabaseSync;
  private readonly byId: StatementSync;

  private constructor(db: DatabaseSync) {
    this.db = db;
    this.byId = db.prepare(`SELECT ${COLUMNS} FROM jobs WHERE id = ?`);
  }

  /** Opens (or makes) the store at `path`; ":memory:" for a store that lives as long as the process. */
  static async open(path: string): Promise<SqliteJobStore> {
    const { DatabaseSync } = await import("node:sqlite");
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
    db.exec(SCHEMA);
    return new SqliteJobStore(db);
  }

  async submit(request: SubmitRequest): Promise<{ job: ServiceJob; created: boolean }> {
    if (request.idempotencyKey !== undefined) {
      const row = this.db
        .prepare(`SELECT ${COLUMNS} FROM jobs WHERE owner = ? AND idempotency_key = ?`)
        .get(request.owner, request.idempotencyKey) as JobRow | undefined;
      if (row) return { job: toJob(row), created: false };
    }
    const id = randomUUID();
    this.db
      .prepare(
        "INSERT INTO jobs (id, kind, spec, owner, idempotency_key, state, created_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
      )
      .run(id, request.spec.kind, JSON.stringify(request.spec), request.owner, request.idempotencyKey ?? null, now());
    return { job: (await this.get(id))!, created: true };
  }

  async get(id: string): Promise<ServiceJob | undefined> {
    const row = this.byId.get(id) as JobRow | undefined;
    return row && toJob(row);
  }

  async list(filter: JobFilter): Promise<JobPage> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.state) (where.push("state = ?"), args.push(filter.state));
    if (filter.kind) (where.push("kind = ?"), args.push(filter.kind));
    if (filter.owner) (where.push("owner = ?"), args.push(filter.owner));
    if (filter.cursor !== undefined) (where.push("seq < ?"), args.push(decodeCursor(filter.cursor)));
    const sql =
      `SELECT ${COLUMNS} FROM jobs` +
      (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
      " ORDER BY seq DESC LIMIT ?";
    const rows = this.db.prepare(sql).all(...args, filter.limit + 1) as unknown as JobRow[];
    const more = rows.length > filter.limit;
    const page = rows.slice(0, filter.limit);
    return { jobs: page.map(toJob), ...(more ? { next: encodeCursor(page[page.length - 1]!.seq) } : {}) };
  }

  async countByState(): Promise<Record<ServiceJobState, number>> {
    const counts = Object.fromEntries(SERVICE_JOB_STATES.map((s) => [s, 0])) as Record<ServiceJobState, number>;
    const rows = this.db.prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").all() as {
      state: ServiceJobState;
      n: number;
    }[];
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  async requestCancel(id: string): Promise<ServiceJob | undefined> {
    this.transaction(() => {
      this.db.prepare("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state IN ('queued', 'running')").run(id);
      this.db
        .prepare("UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ? AND state = 'queued'")
        .run(now(), id);
    });
    return this.get(id);
  }

  async claim(
    worker: string,
    leaseMs: number,
    accepts?: (job: ServiceJob) => boolean,
  ): Promise<ServiceJob | undefined> {
    const candidates = this.db.prepare(
      `SELECT ${COLUMNS} FROM jobs WHERE state = 'queued' OR (state = 'running' AND lease_until < ?) ORDER BY seq LIMIT 64`,
    );
    return this.transaction(() => {
      for (const row of candidates.all(Date.now()) as unknown as JobRow[]) {
        const job = toJob(row);
        if (accepts && !accepts(job)) continue;
        const taken = this.db
          .prepare(
            "UPDATE jobs SET state = 'running', worker = ?, lease_until = ?, attempts = attempts + 1, " +
              "started_at = COALESCE(started_at, ?) WHERE id = ? AND (state = 'queued' OR (state = 'running' AND lease_until < ?))",
          )
          .run(worker, Date.now() + leaseMs, now(), job.id, Date.now());
        if (Number(taken.changes) === 1) return toJob(this.byId.get(job.id) as unknown as JobRow);
      }
      return undefined;
    });
  }

  async renew(id: string, worker: string, leaseMs: number): Promise<boolean> {
    const changed = this.db
      .prepare("UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'running'")
      .run(Date.now() + leaseMs, id, worker);
    return Number(changed.changes) === 1;
  }

  async release(id: string, worker: string): Promise<boolean> {
    const changed = this.db
      .prepare("UPDATE jobs SET lease_until = 0 WHERE id = ? AND worker = ? AND state = 'running'")
      .run(id, worker);
    return Number(changed.changes) === 1;
  }

  async update(
    id: string,
    worker: string,
    patch: { progress?: JobProgress; workflowState?: unknown },
  ): Promise<boolean> {
    const changed = this.db
      .prepare(
        "UPDATE jobs SET progress = COALESCE(?, progress), workflow_state = COALESCE(?, workflow_state) " +
          "WHERE id = ? AND worker = ? AND state = 'running'",
      )
      .run(
        patch.progress ? JSON.stringify(patch.progress) : null,
        patch.workflowState !== undefined ? JSON.stringify(patch.workflowState) : null,
        id,
        worker,
      );
    return Number(changed.changes) === 1;
  }

  async workflowState(id: string): Promise<unknown> {
    const row = this.db.prepare("SELECT workflow_state FROM jobs WHERE id = ?").get(id) as
      { workflow_state: string | null } | undefined;
    return row?.workflow_state ? JSON.parse(row.workflow_state) : undefined;
  }

  async finish(id: string, worker: string, outcome: JobOutcome): Promise<boolean> {
    const changed = this.db
      .prepare(
        "UPDATE jobs SET state = ?, finished_at = ?, result = ?, error = ?, lease_until = NULL " +
          "WHERE id = ? AND worker = ? AND state = 'running'",
      )
      .run(
        outcome.state,
        now(),
        outcome.result ? JSON.stringify(outcome.result) : null,
        outcome.error ? JSON.stringify(outcome.error) : null,
        id,
        worker,
      );
    return Number(changed.changes) === 1;
  }

  async appendEvent(id: string, event: ChromogenicEvent): Promise<number> {
    return this.transaction(() => {
      const row = this.db
        .prepare("UPDATE jobs SET event_count = event_count + 1 WHERE id = ? RETURNING event_count")
        .get(id) as { event_count: number } | undefined;
      if (!row) throw new Error(`no job ${id}`);
      this.db
        .prepare("INSERT INTO events (job, seq, body) VALUES (?, ?, ?)")
        .run(id, row.event_count, JSON.stringify(event));
      return row.event_count;
    });
  }

  async events(id: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const rows = this.db
      .prepare("SELECT seq, body FROM events WHERE job = ? AND seq > ? ORDER BY seq LIMIT ?")
      .all(id, afterSeq, limit) as { seq: number; body: string }[];
    return rows.map((r) => ({ seq: r.seq, event: JSON.parse(r.body) as ChromogenicEvent }));
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private transaction<T>(work: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.db.exec("COMMIT");
      return result;
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
  }
}

function now(): string {
  return new Date().toISOString();
}

/** Cursors are opaque to clients: the last row's number, so a page is an index range scan however deep. */
function encodeCursor(seq: number): string {
  return Buffer.from(String(seq)).toString("base64url");
}

function decodeCursor(cursor: string): number {
  const seq = Number(Buffer.from(cursor, "base64url").toString());
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError("the cursor is not one this service gave");
  return seq;
}

function toJob(row: JobRow): ServiceJob {
  return {
    id: row.id,
    kind: row.kind,
    spec: JSON.parse(row.spec) as ServiceJob["spec"],
    owner: row.owner,
    state: row.state as ServiceJobState,
    createdAt: row.created_at,
    ...(row.started_at ? { startedAt: row.started_at } : {}),
    ...(row.finished_at ? { finishedAt: row.finished_at } : {}),
    cancelRequested: row.cancel_requested === 1,
    attempts: row.attempts,
    ...(row.worker ? { worker: row.worker } : {}),
    ...(row.progress ? { progress: JSON.parse(row.progress) as JobProgress } : {}),
    ...(row.result ? { result: JSON.parse(row.result) as Record<string, unknown> } : {}),
    ...(row.error ? { error: JSON.parse(row.error) as { code: string; message: string } } : {}),
  };
}
