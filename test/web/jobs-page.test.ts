/**
 * The service's web page in a real headless Chromium (Debian's, driven by puppeteer-core) against a real API
 * and real workers (service-stack.ts): the token asked for and kept, a migrate started from the form whose
 * bar moves as the job runs and ends full, its events streamed into the log, another job cancelled from its
 * button (the job ends cancelled, nothing left in the destination), and job texts shown as text, not markup.
 * Screenshots go to test-artifacts/web/ (the test prints where).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { packageFile } from "../../src/util/package-files.js";
import { postJson } from "../service/api/api-fixture.js";
import { startServiceStack } from "../helpers/service-stack.js";

// The page's globals, as the functions run in it use them (the project compiles without the DOM library).
interface PageElement {
  readonly textContent: string | null;
  readonly hidden: boolean;
  readonly value: number;
  readonly max: number;
  querySelector(selector: string): PageElement | null;
  hasAttribute(name: string): boolean;
}
declare const document: { querySelector(selector: string): PageElement | null };
declare const CSS: { escape(text: string): string };
declare const window: { hacked?: number };
declare const sessionStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void };

const CHROMIUM = process.env.CHROMOGENIC_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = packageFile(join("test-artifacts", "web"));

/** The state, progress and detail of a job's row as the page shows them. */
function rowOf(page: Page, id: string) {
  return page.evaluate((id) => {
    const tr = document.querySelector(`tr[data-job="${CSS.escape(id)}"]`);
    if (!tr) return undefined;
    const bar = tr.querySelector("progress")!;
    return {
      state: tr.querySelector(".state")!.textContent ?? "",
      value: bar.hasAttribute("value") ? bar.value : null,
      max: bar.max,
      detail: tr.querySelector(".detail")!.textContent ?? "",
    };
  }, id);
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Headless Chromium, closed after the test; root runs it without its sandbox (which refuses root). */
async function launchChromium(t: { after(fn: () => Promise<void>): void }): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: the web page is tested in Debian's chromium (apt-get install chromium; ` +
      `scripts/setup.sh --test installs it), or set CHROMOGENIC_CHROMIUM to another Chromium`,
  );
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...(process.getuid?.() === 0 ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"],
  });
  t.after(() => browser.close());
  return browser;
}

test("the jobs page: start a migrate from the form, watch its bar and events, cancel another job", async (t) => {
  // First: without the browser the test fails at once, saying what is missing.
  const browser = await launchChromium(t);
  const stack = await startServiceStack(t, { slots: 2 });
  await Promise.all([stack.addImage("first", 256), stack.addImage("second", 256)]);
  await mkdir(ARTIFACTS, { recursive: true });
  t.diagnostic(`screenshots in ${ARTIFACTS}`);
  process.stderr.write(`jobs page test: screenshots in ${ARTIFACTS}\n`);

  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`${stack.url}/`);

  // No token yet: the service refuses the list, and the page asks for one.
  await page.waitForSelector("#token-section:not([hidden])", { timeout: 10_000 });
  await page.type("#token", stack.tokens.root);
  await page.click("#token-form button[type=submit]");
  await page.waitForSelector("#jobs-empty:not([hidden])", { timeout: 10_000 });
  assert.equal(
    await page.evaluate(() => sessionStorage.getItem("chromogenic.token")),
    stack.tokens.root,
    "the token is kept for the tab",
  );

  // A migrate from the form.
  await page.type("#source-cloud", stack.source);
  await page.type("#source-name", "first");
  await page.type("#destination-cloud", stack.destination);
  await page.select("#format", "vmdk");
  await page.click("#job-form button[type=submit]");
  const status = await until("the form to report the new job", 10_000, () =>
    page.$eval("#form-status", (e) => e.textContent ?? "").then((s) => /Started job/.test(s) && s),
  );
  const first = /Started job (\S+)\./.exec(status)![1]!;

  // Another job, submitted by another client, to be cancelled from the page while it runs.
  const submitted = await stack.request(
    "/v1/jobs",
    postJson(
      {
        kind: "migrate",
        source: { cloud: stack.source, image: "second" },
        destination: { kind: "cloud", cloud: stack.destination, format: "vmdk" },
      },
      { token: stack.tokens.root },
    ),
  );
  assert.equal(submitted.status, 201, await submitted.clone().text());
  const second = ((await submitted.json()) as { id: string }).id;

  // The bar moves: two readings of the first job's progress, the later one further.
  const before = await until("the first job's bar to fill a little", 30_000, async () => {
    const row = await rowOf(page, first);
    return row && row.value !== null && row.value > 0 && row.value < row.max && row;
  });
  await page.screenshot({ path: join(ARTIFACTS, "1-progress.png") });
  const after = await until("the first job's bar to move", 30_000, async () => {
    const row = await rowOf(page, first);
    return row && row.value !== null && (row.value > before.value! || /^succeeded/.test(row.state)) && row;
  });
  assert.ok(after.value! > before.value!, `progress ${before.value} then ${after.value}`);
  assert.match(before.detail, /convert|copy|upload/, "the phase is named");
  assert.match(before.detail, /\/s/, "with its rate");

  // Its events, streamed into the log.
  await page.click(`tr[data-job="${first}"] button.link`);
  await page.waitForSelector("#log-section:not([hidden])");
  await until("events in the log", 15_000, () =>
    page.$$eval("#log li", (items) => items.length >= 2 && items.map((i) => i.textContent).join("\n")),
  );
  await page.screenshot({ path: join(ARTIFACTS, "2-event-log.png") });

  // Cancel the other one while it runs.
  await until("the second job to run", 30_000, async () => /^running/.test((await rowOf(page, second))?.state ?? ""));
  await page.click(`tr[data-job="${second}"] button.cancel`);
  await until("the second job to be cancelled", 30_000, async () =>
    /^cancelled/.test((await rowOf(page, second))?.state ?? ""),
  );
  await page.screenshot({ path: join(ARTIFACTS, "3-cancelled.png") });

  // The first one ends: its bar full, its log ending with the result.
  const done = await until("the first job to succeed", 120_000, async () => {
    const row = await rowOf(page, first);
    if (row && /^(failed|cancelled)/.test(row.state)) throw new Error(`the first job ended ${row.state}`);
    return row && /^succeeded/.test(row.state) && row;
  });
  assert.equal(done.value, done.max, "a finished job's bar is full");
  const log = await until("the log's last events", 15_000, () =>
    page
      .$$eval("#log li", (items) => items.map((i) => i.textContent).join("\n"))
      .then((s) => /job succeeded/.test(s) && s),
  );
  assert.match(log, /done \(migrate\)/);
  await page.screenshot({ path: join(ARTIFACTS, "4-succeeded.png"), fullPage: true });

  // An export from the form: the export fields replace the migrate's.
  await page.click('input[name="kind"][value="export"]');
  assert.equal(await page.$eval("#destination-cloud", (e) => e.hidden), true, "the migrate's fields hide");
  await page.type("#output-path", join(stack.outDir, "first.qcow2"));
  await page.select("#format", "qcow2");
  await page.click("#job-form button[type=submit]");
  const exported = await until("the form to report the export", 10_000, () =>
    page.$eval("#form-status", (e) => e.textContent ?? "").then((s) => s !== status && /Started job/.test(s) && s),
  );
  const exportId = /Started job (\S+)\./.exec(exported)![1]!;
  await until("the export to succeed", 120_000, async () =>
    /^succeeded/.test((await rowOf(page, exportId))?.state ?? ""),
  );
  assert.deepEqual((await stack.store.get(exportId))?.spec, {
    kind: "export",
    source: { cloud: stack.source, image: "first" },
    destination: { kind: "file", path: join(stack.outDir, "first.qcow2"), format: "qcow2" },
  });
  assert.ok(existsSync(join(stack.outDir, "first.qcow2")), "the export wrote its file");

  assert.equal((await stack.store.get(first))?.state, "succeeded");
  assert.equal((await stack.store.get(second))?.state, "cancelled");
  assert.deepEqual(await stack.destinationImages(), ["first"], "the cancelled job left nothing in the destination");
  assert.deepEqual(pageErrors, [], "no script error in the page");
});

test("the jobs page shows what jobs name as text, never as markup", async (t) => {
  const browser = await launchChromium(t);
  const stack = await startServiceStack(t, { slots: 1 });
  const hostile = `<img src=x onerror="window.hacked=1">`;
  const submitted = await stack.request(
    "/v1/jobs",
    postJson(
      {
        kind: "migrate",
        source: { cloud: stack.source, image: hostile },
        destination: { kind: "cloud", cloud: stack.destination, name: "<b>bold</b>" },
      },
      { token: stack.tokens.root },
    ),
  );
  assert.equal(submitted.status, 201, await submitted.clone().text());
  const id = ((await submitted.json()) as { id: string }).id;
  const page = await browser.newPage();
  await page.goto(`${stack.url}/`);
  await page.evaluate((token) => sessionStorage.setItem("chromogenic.token", token), stack.tokens.root);
  await page.reload();
  // It fails (there is no such image) with a message that names the image.
  const row = await until("the job to fail", 30_000, async () => {
    const r = await rowOf(page, id);
    return r && /^failed/.test(r.state) && r;
  });
  await page.click(`tr[data-job="${id}"] button.link`);
  await until("its events", 15_000, () => page.$$eval("#log li", (items) => items.length >= 1));
  await page.screenshot({ path: join(ARTIFACTS, "5-hostile-names.png"), fullPage: true });
  const what = await page.$eval(`tr[data-job="${id}"] .what`, (e) => e.textContent ?? "");
  assert.ok(what.includes(hostile), `the source is shown as written: ${what}`);
  assert.equal(await page.$$eval("main img, main b", (e) => e.length), 0, "no element made from job data");
  assert.equal(await page.evaluate(() => window.hacked), undefined);
  assert.match(row.state, /failed/);
});
