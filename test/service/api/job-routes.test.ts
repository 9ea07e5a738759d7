import assert from "node:assert/strict";
import { readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { ServiceJob } from "../../../src/service/service-job.js";
import { postJson, startApi, type ApiFixture } from "./api-fixture.js";

let api: ApiFixture;
before(async () => {
  api = await startApi({ bodyLimit: 4096 });
  writeFileSync(join(api.inDir, "a.raw"), Buffer.alloc(4096));
});
after(() => api.close());

const convert = (over: Record<string, unknown> = {}) => ({
  kind: "convert",
  input: join(api.inDir, "a.raw"),
  output: join(api.outDir, "a.qcow2"),
  format: "qcow2",
  ...over,
});

async function count(): Promise<number> {
  const counts = await api.store.countByState();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

async function expectError(response: Response, status: number, code: string): Promise<string> {
  assert.equal(response.status, status, `status of ${response.url}`);
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  const body = (await response.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, body.error.message);
  assert.ok(body.error.message.length > 0);
  return body.error.message;
}

test("POST /v1/jobs queues a job (201, Location); the same Idempotency-Key answers it again (200)", async () => {
  const first = await api.request("/v1/jobs", postJson(convert(), { headers: { "idempotency-key": "k-1" } }));
  assert.equal(first.status, 201);
  const job = (await first.json()) as ServiceJob;
  assert.equal(job.state, "queued");
  assert.equal(job.owner, "alice");
  assert.equal(first.headers.get("location"), `/v1/jobs/${job.id}`);
  const again = await api.request("/v1/jobs", postJson(convert(), { headers: { "idempotency-key": "k-1" } }));
  assert.equal(again.status, 200);
  assert.equal(((await again.json()) as ServiceJob).id, job.id);
  const before = await count();
  const other = await api.request(
    "/v1/jobs",
    postJson(convert({ format: "vmdk" }), { headers: { "idempotency-key": "k-1" } }),
  );
  await expectError(other, 409, "idempotency-conflict");
  assert.equal(await count(), before);
});

test("concurrent retries with one Idempotency-Key make one job", async () => {
  const before = await count();
  const answers = await Promise.all(
    Array.from({ length: 8 }, () =>
      api.request("/v1/jobs", postJson(convert(), { headers: { "idempotency-key": "k-race" } })),
    ),
  );
  const jobs = (await Promise.all(answers.map((a) => a.json()))) as ServiceJob[];
  assert.equal(new Set(jobs.map((j) => j.id)).size, 1);
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
  assert.equal(await count(), before + 1);
});

test("GET /v1/jobs/{id} answers the owner's job; another owner gets 404, an admin sees it", async () => {
  const created = (await (await api.request("/v1/jobs", postJson(convert()))).json()) as ServiceJob;
  const got = await api.request(`/v1/jobs/${created.id}`);
  assert.equal(got.status, 200);
  assert.deepEqual(await got.json(), created);
  await expectError(await api.request(`/v1/jobs/${created.id}`, { token: api.tokens.bob }), 404, "not-found");
  assert.equal((await api.request(`/v1/jobs/${created.id}`, { token: api.tokens.root })).status, 200);
  await expectError(await api.request("/v1/jobs/no-such-job"), 404, "not-found");
  await expectError(await api.request("/v1/jobs/..%2f..%2fetc"), 404, "not-found");
});

test("GET /v1/jobs filters by state and kind, pages by cursor, bounds limit, shows a token its own", async () => {
  const mine: string[] = [];
  for (let i = 0; i < 5; i++)
    mine.push(((await (await api.request("/v1/jobs", postJson(convert()))).json()) as ServiceJob).id);
  const bobs = (await (
    await api.request("/v1/jobs", postJson(convert(), { token: api.tokens.bob }))
  ).json()) as ServiceJob;
  const page1 = (await (await api.request("/v1/jobs?limit=2")).json()) as { jobs: ServiceJob[]; next?: string };
  assert.deepEqual(
    page1.jobs.map((j) => j.id),
    [mine[4], mine[3]],
  );
  assert.ok(page1.next);
  const page2 = (await (await api.request(`/v1/jobs?limit=2&cursor=${page1.next}`)).json()) as { jobs: ServiceJob[] };
  assert.deepEqual(
    page2.jobs.map((j) => j.id),
    [mine[2], mine[1]],
  );
  const all = (await (await api.request("/v1/jobs?limit=200")).json()) as { jobs: ServiceJob[] };
  assert.ok(all.jobs.every((j) => j.owner === "alice"));
  assert.ok(!all.jobs.some((j) => j.id === bobs.id));
  const admin = (await (await api.request("/v1/jobs?limit=200", { token: api.tokens.root })).json()) as {
    jobs: ServiceJob[];
  };
  assert.ok(admin.jobs.some((j) => j.id === bobs.id));
  const onlyBob = (await (await api.request("/v1/jobs?owner=bob", { token: api.tokens.root })).json()) as {
    jobs: ServiceJob[];
  };
  assert.deepEqual(
    onlyBob.jobs.map((j) => j.id),
    [bobs.id],
  );
  await expectError(await api.request("/v1/jobs?owner=bob"), 403, "forbidden");

  await api.request(`/v1/jobs/${mine[0]}`, { method: "DELETE" });
  const cancelled = (await (await api.request("/v1/jobs?state=cancelled&kind=convert")).json()) as {
    jobs: ServiceJob[];
  };
  assert.ok(cancelled.jobs.some((j) => j.id === mine[0]));
  assert.ok(cancelled.jobs.every((j) => j.state === "cancelled"));
  const migrates = (await (await api.request("/v1/jobs?kind=migrate")).json()) as { jobs: ServiceJob[] };
  assert.deepEqual(migrates.jobs, []);

  await expectError(await api.request("/v1/jobs?limit=201"), 400, "bad-request");
  await expectError(await api.request("/v1/jobs?limit=0"), 400, "bad-request");
  await expectError(await api.request("/v1/jobs?state=lost"), 400, "bad-request");
  await expectError(await api.request("/v1/jobs?colour=red"), 400, "bad-request");
  await expectError(await api.request("/v1/jobs?cursor=bm90LWEtbnVtYmVy"), 400, "bad-request");
});

test("DELETE /v1/jobs/{id} cancels a queued job at once and marks a running one for its worker (202)", async () => {
  const queued = (await (await api.request("/v1/jobs", postJson(convert()))).json()) as ServiceJob;
  const answer = await api.request(`/v1/jobs/${queued.id}`, { method: "DELETE" });
  assert.equal(answer.status, 202);
  assert.equal(((await answer.json()) as ServiceJob).state, "cancelled");

  const running = (await (await api.request("/v1/jobs", postJson(convert()))).json()) as ServiceJob;
  let held: ServiceJob | undefined;
  while ((held = await api.store.claim("w-test", 60_000)) && held.id !== running.id)
    await api.store.finish(held.id, "w-test", { state: "failed", error: { code: "X", message: "test" } });
  assert.equal(held?.id, running.id);
  await expectError(
    await api.request(`/v1/jobs/${running.id}`, { method: "DELETE", token: api.tokens.bob }),
    404,
    "not-found",
  );
  const marked = await api.request(`/v1/jobs/${running.id}`, { method: "DELETE" });
  assert.equal(marked.status, 202);
  const body = (await marked.json()) as ServiceJob;
  assert.equal(body.state, "running");
  assert.equal(body.cancelRequested, true);
});

test("no token or an unknown one: 401; a token without the kind or a cloud: 403; nothing stored", async () => {
  const before = await count();
  await expectError(await api.request("/v1/jobs", postJson(convert(), { token: null })), 401, "unauthorized");
  await expectError(await api.request("/v1/jobs", postJson(convert(), { token: "cgt_guessed" })), 401, "unauthorized");
  await expectError(await api.request("/v1/jobs", { token: null }), 401, "unauthorized");
  await expectError(await api.request("/metrics", { token: null }), 401, "unauthorized");
  const clean = await api.request(
    "/v1/jobs",
    postJson(convert({ kind: "clean", format: undefined }), { token: api.tokens.bob }),
  );
  assert.match(await expectError(clean, 403, "forbidden"), /may not run clean jobs/);
  const otherCloud = await api.request(
    "/v1/jobs",
    postJson({
      kind: "migrate",
      source: { cloud: `local:${api.inDir}`, image: "x" },
      destination: { kind: "cloud", cloud: "openstack-prod" },
    }),
  );
  assert.match(await expectError(otherCloud, 403, "forbidden"), /may not use cloud "openstack-prod"/);
  assert.equal(await count(), before);
});

test("bad input: malformed JSON, unknown or secret-bearing fields, too large, wrong type: 4xx, nothing stored", async () => {
  const before = await count();
  await expectError(await api.request("/v1/jobs", postJson('{"kind": "convert",')), 400, "bad-json");
  await expectError(await api.request("/v1/jobs", postJson("")), 400, "bad-json");
  const unknown = await api.request("/v1/jobs", postJson(convert({ colour: "red" })));
  assert.match(await expectError(unknown, 400, "invalid-job"), /colour/);
  const secret = await api.request(
    "/v1/jobs",
    postJson({
      kind: "migrate",
      source: { cloud: `local:${api.inDir}`, image: "x", password: "hunter2" },
      destination: { kind: "cloud", cloud: `local:${api.outDir}` },
    }),
  );
  assert.match(await expectError(secret, 400, "invalid-job"), /password/);
  await expectError(await api.request("/v1/jobs", postJson({ kind: "format-disk" })), 400, "invalid-job");
  await expectError(await api.request("/v1/jobs", postJson([1, 2, 3])), 400, "invalid-job");
  await expectError(
    await api.request("/v1/jobs", postJson('{"__proto__": {"admin": true}, "kind": "convert"}')),
    400,
    "bad-json",
  );
  const big = await api.request("/v1/jobs", postJson(convert({ format: "x".repeat(8192) })));
  await expectError(big, 413, "body-too-large");
  const text = await api.request("/v1/jobs", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify(convert()),
  });
  await expectError(text, 415, "unsupported-media-type");
  const form = await api.request("/v1/jobs", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "kind=convert",
  });
  await expectError(form, 415, "unsupported-media-type");
  await expectError(
    await api.request("/v1/jobs", postJson(convert(), { headers: { "idempotency-key": "x".repeat(300) } })),
    400,
    "bad-request",
  );
  await expectError(await api.request("/v1/nothing"), 404, "not-found");
  assert.equal(await count(), before);
});

test("paths outside the allowed folders, `..` and links leading out are refused with 400, nothing stored", async () => {
  const before = await count();
  symlinkSync("/etc", join(api.inDir, "etc-link"));
  symlinkSync("/tmp/chromogenic-nowhere-" + process.pid, join(api.outDir, "dangling"));
  const cases: [Record<string, unknown>, RegExp][] = [
    [convert({ input: "/etc/passwd" }), /input: "\/etc\/passwd" is outside the folders jobs may read/],
    [convert({ input: join(api.inDir, "etc-link", "passwd") }), /input: .* \(it leads to "\/etc\/passwd"\)/],
    [convert({ output: join(api.inDir, "b.qcow2") }), /output: .* is outside the folders jobs may write/],
    [convert({ output: `${api.outDir}/../in/b.qcow2` }), /output: .* climbs with `\.\.`/],
    [convert({ output: "out/b.qcow2" }), /output: .* is not an absolute path/],
    [convert({ output: join(api.outDir, "dangling") }), /output: .* goes through a link to nothing/],
    [
      {
        kind: "migrate",
        source: { cloud: `local:${api.inDir}`, image: "x" },
        destination: { kind: "cloud", cloud: `local:${api.outDir}` },
        workDir: "/var/tmp",
      },
      /workDir: "\/var\/tmp" is outside/,
    ],
  ];
  for (const [spec, message] of cases) {
    const answer = await api.request("/v1/jobs", postJson(spec, { token: api.tokens.root }));
    assert.match(await expectError(answer, 400, "path-not-allowed"), message);
  }
  const escapeStore = await api.request(
    "/v1/jobs",
    postJson(
      {
        kind: "migrate",
        source: { cloud: `local:${join(api.inDir, "etc-link")}`, image: "x" },
        destination: { kind: "cloud", cloud: `local:${api.outDir}` },
      },
      { token: api.tokens.root },
    ),
  );
  assert.match(await expectError(escapeStore, 400, "path-not-allowed"), /source\.cloud: .* leads to "\/etc"/);
  assert.equal(await count(), before);
  const fine = await api.request(
    "/v1/jobs",
    postJson({
      kind: "migrate",
      source: { cloud: `local:${api.inDir}`, image: "x" },
      destination: { kind: "cloud", cloud: `local:${api.outDir}` },
      workDir: join(api.outDir, "work", "new"),
    }),
  );
  assert.equal(fine.status, 201);
});

test("every submission and cancel is audited with who, what, job and outcome, and no token", async () => {
  const created = (await (await api.request("/v1/jobs", postJson(convert()))).json()) as ServiceJob;
  await api.request(`/v1/jobs/${created.id}`, { method: "DELETE" });
  await api.request("/v1/jobs", postJson(convert(), { token: null }));
  await new Promise((r) => setTimeout(r, 50));
  const text = readFileSync(api.auditFile, "utf8");
  for (const token of Object.values(api.tokens)) assert.ok(!text.includes(token), "no token in the audit log");
  const lines = text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(
    lines.some(
      (l) =>
        l.action === "submit" &&
        l.job === created.id &&
        l.who === "alice" &&
        l.outcome === "created" &&
        l.kind === "convert",
    ),
  );
  assert.ok(
    lines.some((l) => l.action === "cancel" && l.job === created.id && l.outcome === "cancelled" && l.status === 202),
  );
  assert.ok(
    lines.some((l) => l.action === "submit" && l.who === null && l.outcome === "unauthorized" && l.status === 401),
  );
  assert.ok(lines.some((l) => l.action === "submit" && l.outcome === "path-not-allowed"));
  assert.ok(!lines.some((l) => l.action === undefined), "reads are not audited");
});
