/**
 * The server as a whole: TLS with a certificate made here by openssl, the rate limit, /healthz, /metrics, the web
 * page's files.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Agent, fetch as undiciFetch } from "undici";
import type { ServiceJob } from "../../../src/service/service-job.js";
import { postJson, startApi } from "./api-fixture.js";

test("TLS: the API answers over HTTPS with the configured certificate", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chromogenic-api-tls-"));
  try {
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    const made = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"].concat([
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
      ]),
      { encoding: "utf8" },
    );
    assert.equal(made.status, 0, `openssl (Debian's openssl package) made a certificate: ${made.error ?? made.stderr}`);
    const api = await startApi({ tls: { cert, key } });
    try {
      assert.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const dispatcher = new Agent({ connect: { ca: readFileSync(cert) } });
      const answer = await undiciFetch(`${api.url}/v1/jobs`, {
        dispatcher,
        headers: { authorization: `Bearer ${api.tokens.alice}` },
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(await answer.json(), { jobs: [] });
      await assert.rejects(undiciFetch(`${api.url}/healthz`), "a client that does not trust the certificate fails");
      await assert.rejects(fetch(api.url.replace("https:", "http:") + "/healthz"), "no plain HTTP on the TLS port");
      await dispatcher.close();
    } finally {
      await api.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("rate limit: past `max` requests a window a token gets 429 with Retry-After; other tokens go on", async () => {
  const api = await startApi({ rateLimit: { max: 5, windowSeconds: 60 } });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await api.request("/v1/jobs")).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    const limited = await api.request("/v1/jobs");
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) > 0, "Retry-After in seconds");
    assert.equal(((await limited.json()) as { error: { code: string } }).error.code, "rate-limited");
    const flood = await api.request("/v1/jobs", postJson({ kind: "convert" }));
    assert.equal(flood.status, 429, "a flood is refused before its body is read");
    assert.equal((await api.request("/v1/jobs", { token: api.tokens.bob })).status, 200);
    const unknown: number[] = [];
    for (let i = 0; i < 7; i++) unknown.push((await api.request("/v1/jobs", { token: "cgt_guess" + i })).status);
    assert.deepEqual(unknown, [401, 401, 401, 401, 401, 429, 429], "guessing tokens is limited per address");
  } finally {
    await api.close();
  }
});

test("/healthz says the store answers; /metrics counts jobs by state, finished jobs' bytes and durations", async () => {
  const api = await startApi();
  try {
    const health = await api.request("/healthz", { token: null });
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, "ok");

    const spec = {
      kind: "convert",
      input: join(api.inDir, "a.raw"),
      output: join(api.outDir, "a.vmdk"),
      format: "vmdk",
    };
    const jobs: ServiceJob[] = [];
    for (let i = 0; i < 3; i++) jobs.push((await (await api.request("/v1/jobs", postJson(spec))).json()) as ServiceJob);
    await api.request("/metrics"); // the metrics have seen the jobs queued
    for (const job of jobs.slice(0, 2)) {
      const held = await api.store.claim("w-test", 60_000);
      assert.equal(held?.id, job.id);
      await api.store.finish(job.id, "w-test", {
        state: "succeeded",
        result: { bytes: { download: 1000, upload: 500 } },
      });
    }
    const metrics = await api.request("/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await metrics.text();
    assert.match(text, /^chromogenic_jobs\{state="queued"\} 1$/m);
    assert.match(text, /^chromogenic_jobs\{state="succeeded"\} 2$/m);
    assert.match(text, /^chromogenic_job_bytes_total\{kind="convert"\} 3000$/m);
    assert.match(text, /^chromogenic_job_duration_seconds_count\{kind="convert",state="succeeded"\} 2$/m);
    assert.match(
      text,
      /^chromogenic_http_request_duration_seconds_count\{method="POST",route="\/v1\/jobs",status="201"\} 3$/m,
    );
    const again = await (await api.request("/metrics")).text();
    assert.match(again, /^chromogenic_job_bytes_total\{kind="convert"\} 3000$/m, "a job is counted once");

    await api.store.close();
    const down = await api.request("/healthz", { token: null });
    assert.equal(down.status, 503);
    assert.equal(((await down.json()) as { status: string }).status, "unavailable");
  } finally {
    await api.server.close();
    rmSync(api.dir, { recursive: true, force: true });
  }
});

test("the web page's files are served at / with their content types, and nothing outside web/", async () => {
  const api = await startApi();
  try {
    const web = join(api.dir, "web");
    mkdirSync(join(web, "lib"));
    writeFileSync(join(web, "index.html"), "<!doctype html><title>jobs</title>");
    writeFileSync(join(web, "lib", "app.js"), "export {};");
    writeFileSync(join(web, "style.css"), "body{}");
    writeFileSync(join(api.dir, "secret.txt"), "not-for-clients");
    const index = await api.request("/", { token: null });
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(await index.text(), "<!doctype html><title>jobs</title>");
    const js = await api.request("/lib/app.js", { token: null });
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    const css = await api.request("/style.css", { token: null });
    assert.match(css.headers.get("content-type") ?? "", /^text\/css/);
    for (const escape of ["/../secret.txt", "/%2e%2e/secret.txt", "/lib/..%2f..%2fsecret.txt", "/..%5csecret.txt"]) {
      const answer = await api.request(escape, { token: null });
      assert.notEqual(answer.status, 200, escape);
      assert.ok(!(await answer.text()).includes("not-for-clients"), escape);
    }
    assert.equal((await api.request("/missing.js", { token: null })).status, 404);
  } finally {
    await api.close();
  }
});
