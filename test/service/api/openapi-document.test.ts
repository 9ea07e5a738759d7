import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { startApi, type ApiFixture } from "./api-fixture.js";

let api: ApiFixture;
before(async () => (api = await startApi()));
after(() => api.close());

async function document(): Promise<Record<string, unknown>> {
  const answer = await api.request("/openapi.json", { token: null });
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get("content-type") ?? "", /application\/json/);
  return (await answer.json()) as Record<string, unknown>;
}

test("GET /openapi.json is a valid OpenAPI 3.1 document", async () => {
  const doc = await document();
  assert.equal(doc.openapi, "3.1.0");
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.equal(validator.version, "3.1");
  assert.deepEqual(result.errors, undefined, JSON.stringify(result.errors, null, 2));
  assert.equal(result.valid, true);
  // Every $ref points at a component that exists.
  const schemas = (doc.components as { schemas: Record<string, unknown> }).schemas;
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(refs.length > 5);
  for (const ref of refs) assert.ok(schemas[ref], `component ${ref} exists`);
});

test("every route the server answers is in the document, and every documented route is answered", async () => {
  const doc = await document();
  const paths = doc.paths as Record<string, Record<string, unknown>>;
  const documented = new Set(
    Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)),
  );
  const served = new Set(
    api.server.routes
      // HEAD answers come with GET; the web page's files (`/*`) are one documented route, `/`.
      .filter((r) => r.method !== "HEAD")
      .map((r) => `${r.method} ${r.url === "/*" ? "/" : r.url.replace(/:(\w+)/g, "{$1}")}`),
  );
  assert.deepEqual([...served].sort(), [...documented].sort());
});

test("the document's schemas are the ones requests are checked against: strict jobs, the event schema", async () => {
  const doc = await document();
  const schemas = (doc.components as { schemas: Record<string, { oneOf?: { additionalProperties?: unknown }[] }> })
    .schemas;
  const jobKinds = schemas.JobSpec?.oneOf ?? [];
  assert.equal(jobKinds.length, 5);
  for (const kind of jobKinds) assert.equal(kind.additionalProperties, false);
  assert.ok(schemas.Event && schemas.ServiceJob && schemas.JobPage && schemas.Error);
});
