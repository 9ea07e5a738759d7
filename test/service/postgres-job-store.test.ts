/**
 * The job store contract on a real PostgreSQL (test/infra/postgres/start.sh), one schema per store; plus what
 * only a shared server shows: workers claiming at once on separate connections, racing idempotent submits, the
 * schema made once by processes opening together, and a password that never shows in an error.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { JobSpec } from "../../src/service/job-spec.js";
import { PostgresJobStore } from "../../src/service/postgres-job-store.js";
import {
  dropSchema,
  openTestPostgresStore,
  postgresUrl,
  requirePostgres,
  uniqueName,
} from "../helpers/service-infra.js";
import { jobStoreContract } from "./job-store-contract.js";

const schemas: string[] = [];
after(async () => {
  for (const schema of schemas) await dropSchema(schema).catch(() => {});
});

async function openEmpty(): Promise<PostgresJobStore> {
  const { store, schema } = await openTestPostgresStore();
  schemas.push(schema);
  return store;
}

jobStoreContract("PostgreSQL job store", openEmpty);

const SPEC: JobSpec = { kind: "convert", input: "/srv/in/a.raw", output: "/srv/out/a.qcow2", format: "qcow2" };

test("PostgreSQL job store: workers claiming at once on their own connections each get another job", async () => {
  const schema = uniqueName("test");
  schemas.push(schema);
  const first = await PostgresJobStore.open(postgresUrl, { schema });
  const stores = [first, ...(await Promise.all([1, 2, 3].map(() => PostgresJobStore.open(postgresUrl, { schema }))))];
  try {
    const submitted = new Set<string>();
    for (let i = 0; i < 40; i++) submitted.add((await first.submit({ spec: SPEC, owner: "alice" })).job.id);
    const taken: string[] = [];
    await Promise.all(
      stores.map(async (store, w) => {
        for (;;) {
          const job = await store.claim(`w${w}`, 60_000);
          if (!job) return;
          taken.push(job.id);
        }
      }),
    );
    assert.equal(taken.length, 40, "every job claimed once");
    assert.deepEqual(new Set(taken), submitted);
  } finally {
    for (const store of stores) await store.close();
  }
});

test("PostgreSQL job store: racing submits with one idempotency key make one job", async () => {
  const store = await openEmpty();
  try {
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => store.submit({ spec: SPEC, owner: "alice", idempotencyKey: "same" })),
    );
    assert.equal(new Set(answers.map((a) => a.job.id)).size, 1);
    assert.equal(answers.filter((a) => a.created).length, 1);
  } finally {
    await store.close();
  }
});

test("PostgreSQL job store: the schema is made once by stores opening together, and kept on reopen", async () => {
  const schema = uniqueName("test");
  schemas.push(schema);
  const stores = await Promise.all([1, 2, 3].map(() => PostgresJobStore.open(postgresUrl, { schema })));
  const { job } = await stores[0]!.submit({ spec: SPEC, owner: "alice" });
  for (const store of stores) await store.close();
  const again = await PostgresJobStore.open(postgresUrl, { schema });
  try {
    assert.equal((await again.get(job.id))?.state, "queued", "a reopened store keeps its jobs");
  } finally {
    await again.close();
  }
});

test("PostgreSQL job store: a wrong password fails to open, and the error does not carry the password", async () => {
  await requirePostgres();
  const url = new URL(postgresUrl);
  url.password = "not-the-password-4711";
  await assert.rejects(PostgresJobStore.open(url.toString(), { schema: uniqueName("test") }), (e: Error) => {
    assert.match(e.message, /password authentication failed/);
    assert.doesNotMatch(e.message, /4711/);
    assert.match(e.message, /\*\*\*/);
    return true;
  });
});

test("PostgreSQL job store: a bad schema name is refused before any SQL", async () => {
  await assert.rejects(PostgresJobStore.open(postgresUrl, { schema: "x; DROP TABLE jobs" }), RangeError);
});
