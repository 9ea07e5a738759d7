// The jobs page of `chromogenic serve`: the jobs with live progress, a job's events as they come, cancel, and
// a form that starts a migrate or an export. Plain DOM, no framework, no build step. Everything shown is set
// as text (textContent, attributes), never parsed as HTML: job names and event texts come from users.

const TOKEN_KEY = "chromogenic.token";
const POLL_MS = 1000;
const LOG_LIMIT = 2000;

const $ = (id) => document.getElementById(id);
const rows = new Map(); // job id → its row's elements
let following = null; // { id, controller } of the job whose events are shown
let pendingKey = null; // the Idempotency-Key of a submission not yet answered (a retry reuses it)
const progressLines = new Map(); // phase → the log line its progress events update

// ---- the API ------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const h = { accept: "application/json", ...headers };
  if (token()) h.authorization = `Bearer ${token()}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  if (response.status === 401) askToken("The service refused the token: enter a valid one.");
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    const message = typeof body?.error === "object" ? body.error?.message : (body?.message ?? body?.error);
    if (typeof message === "string" && message) return `${message} (${response.status})`;
  } catch {
    // not JSON: the status says it
  }
  return `the service answered ${response.status} ${response.statusText}`;
}

/** The messages of a text/event-stream body: { id, event, data } per blank-line-ended block. */
async function* eventStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let message = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    text += value;
    const lines = text.split(/\r\n|\r|\n/);
    text = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (message.data.length)
          yield { id: message.id, event: message.event ?? "message", data: message.data.join("\n") };
        message = { data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "data") message.data.push(value);
      else if (name === "id") message.id = value;
      else if (name === "event") message.event = value;
    }
  }
}

// ---- formatting ---------------------------------------------------------------------------------------------

function bytes(n) {
  if (!Number.isFinite(n)) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

function duration(seconds) {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function describeJob(job) {
  const spec = job.spec ?? {};
  const source = spec.source
    ? `${spec.source.cloud}:${spec.source.image ?? `instance ${spec.source.instance}`}`
    : spec.input;
  const destination = spec.destination
    ? spec.destination.kind === "file"
      ? `${spec.destination.path} (${spec.destination.format})`
      : spec.destination.cloud
    : spec.output;
  return `${job.kind} ${source ?? "?"} → ${destination ?? "?"}`;
}

function isOpen(state) {
  return state === "queued" || state === "running";
}

// ---- the jobs -----------------------------------------------------------------------------------------------

function element(tag, attributes = {}, text) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) e.setAttribute(name, value);
  if (text !== undefined) e.textContent = text;
  return e;
}

function newRow(job) {
  const tr = element("tr", { "data-job": job.id });
  const idCell = element("td");
  const open = element(
    "button",
    { type: "button", class: "link", "aria-label": `Show the events of job ${job.id}` },
    job.id,
  );
  open.addEventListener("click", () => followEvents(job.id));
  idCell.append(open);
  const what = element("td", { class: "what" });
  const state = element("td", { class: "state" });
  const progressCell = element("td", { class: "progress" });
  const bar = element("progress", { max: "1", "aria-label": `Progress of job ${job.id}` });
  const detail = element("span", { class: "detail" });
  progressCell.append(bar, detail);
  const actions = element("td");
  const cancel = element("button", { type: "button", class: "cancel", "aria-label": `Cancel job ${job.id}` }, "Cancel");
  cancel.addEventListener("click", () => cancelJob(job.id, cancel));
  actions.append(cancel);
  tr.append(idCell, what, state, progressCell, actions);
  return { tr, what, state, bar, detail, cancel };
}

/** Shows a job's progress: from its record, or from a live progress event of its stream. */
function showProgress(row, progress, open) {
  if (!progress) {
    if (open) row.bar.removeAttribute("value");
    else row.bar.value = 0; // a job that ended without progress: an empty bar, not a busy one
    row.detail.textContent = open ? "waiting" : "";
    return;
  }
  const { phase, bytes: done, total, bytesPerSecond, etaSeconds } = progress;
  if (total) {
    row.bar.max = total;
    row.bar.value = Math.min(done, total);
  } else if (!row.bar.hasAttribute("value")) {
    // No total (an upload of a size not known in advance): busy, unless an earlier phase's bar already shows
    // how far the job is — jobs whose phases overlap (convert streamed into upload) would make it flicker.
    if (open) row.bar.removeAttribute("value");
    else row.bar.value = 0;
  }
  const parts = [phase, total ? `${bytes(done)} of ${bytes(total)}` : bytes(done)];
  if (bytesPerSecond !== undefined) parts.push(`${bytes(bytesPerSecond)}/s`);
  if (etaSeconds !== undefined && etaSeconds !== null && open) parts.push(`ETA ${duration(etaSeconds)}`);
  row.detail.textContent = parts.join(" · ");
}

function render(jobs) {
  const body = $("jobs");
  const seen = new Set();
  let previous = null;
  for (const job of jobs) {
    seen.add(job.id);
    let row = rows.get(job.id);
    if (!row) {
      row = newRow(job);
      rows.set(job.id, row);
    }
    // In the list's order (newest first), moving a row only when it is out of place, so focus stays put.
    const wanted = previous ? previous.nextSibling : body.firstChild;
    if (wanted !== row.tr) body.insertBefore(row.tr, wanted);
    previous = row.tr;
    const open = isOpen(job.state);
    row.tr.dataset.state = job.state;
    row.what.textContent = describeJob(job);
    row.state.textContent =
      job.state + (job.cancelRequested && open ? " (cancelling)" : "") + (job.error ? `: ${job.error.message}` : "");
    // A job the stream shows live keeps its livelier progress; the list's is a second behind it.
    if (!(following?.id === job.id && open && row.live)) showProgress(row, job.progress, open);
    if (job.state === "succeeded") {
      row.bar.max = 1;
      row.bar.value = 1;
    }
    row.cancel.hidden = !open || job.cancelRequested;
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  $("jobs-empty").hidden = jobs.length > 0;
}

async function refresh() {
  try {
    const response = await api("/v1/jobs?limit=100");
    const body = await response.json();
    render(Array.isArray(body) ? body : (body.jobs ?? []));
    $("connection").textContent = "";
  } catch (e) {
    $("connection").textContent = e.status === 401 ? "Not signed in." : `Cannot list the jobs: ${e.message}`;
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, document.hidden ? POLL_MS * 5 : POLL_MS);
}

async function cancelJob(id, button) {
  button.disabled = true;
  try {
    await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
    await refresh();
  } catch (e) {
    $("connection").textContent = `Cannot cancel job ${id}: ${e.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---- a job's events -----------------------------------------------------------------------------------------

function eventText(e) {
  switch (e.event) {
    case "progress":
      return `${e.phase}: ${e.total ? `${bytes(e.bytes)} of ${bytes(e.total)}` : bytes(e.bytes)}, ${bytes(e.rate)}/s${
        e.eta !== null && e.eta !== undefined ? `, ETA ${duration(e.eta)}` : ""
      }`;
    case "phase":
      return `${e.phase} ${e.state === "start" ? "started" : "ended"}${e.detail ? `: ${e.detail}` : ""}`;
    case "step":
      return `${e.phase}: ${e.name} (${e.index}/${e.count})`;
    case "message":
      return `${e.level === "warning" ? "warning: " : ""}${e.text}`;
    case "job":
      return `job ${e.job}`;
    case "done":
      return `done (${e.command})`;
    case "error":
      return `error ${e.code}: ${e.message}`;
    default:
      return JSON.stringify(e);
  }
}

function appendEvent(e) {
  const log = $("log");
  // Progress comes several times a second, and phases overlap (a conversion streamed into an upload): one line
  // per phase, updated in place, not a line per event.
  const line = e.event === "progress" ? progressLines.get(e.phase) : undefined;
  if (line?.isConnected) line.textContent = eventText(e);
  else {
    const li = element("li", { class: `event ${e.event}${e.level ? ` ${e.level}` : ""}` }, eventText(e));
    if (e.event === "progress") progressLines.set(e.phase, li);
    if (e.event === "phase" && e.state === "start") progressLines.delete(e.phase);
    log.append(li);
    while (log.childElementCount > LOG_LIMIT) log.firstElementChild.remove();
  }
  if (e.event === "progress" && following) {
    const row = rows.get(following.id);
    if (row && isOpen(row.tr.dataset.state)) {
      row.live = true;
      showProgress(
        row,
        { phase: e.phase, bytes: e.bytes, total: e.total, bytesPerSecond: e.rate, etaSeconds: e.eta ?? undefined },
        true,
      );
    }
  }
}

async function followEvents(id) {
  following?.controller.abort();
  for (const row of rows.values()) row.live = false;
  const controller = new AbortController();
  following = { id, controller };
  $("log").replaceChildren();
  progressLines.clear();
  $("log-job").textContent = `job ${id}`;
  $("log-section").hidden = false;
  let last = 0;
  // The stream ends when the job does; a dropped connection resumes after the last event seen.
  for (let attempt = 0; attempt < 20 && !controller.signal.aborted; attempt++) {
    try {
      const headers = { accept: "text/event-stream" };
      if (last) headers["last-event-id"] = String(last);
      const response = await api(`/v1/jobs/${encodeURIComponent(id)}/events`, { headers, signal: controller.signal });
      for await (const message of eventStream(response.body)) {
        if (message.id && /^\d+$/.test(message.id)) last = Number(message.id);
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          continue; // not JSON: nothing to show
        }
        // The stream's last message is the finished job itself.
        if (message.event === "end") {
          $("log").append(element("li", { class: "event end" }, `job ${data.state}`));
          refresh();
        } else appendEvent(data);
      }
      return;
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e instanceof ApiError) {
        $("log").append(element("li", { class: "event error" }, `Cannot follow the events: ${e.message}`));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * Math.min(8, 2 ** attempt)));
    }
  }
}

$("close-log").addEventListener("click", () => {
  following?.controller.abort();
  following = null;
  $("log-section").hidden = true;
});

// ---- the form -----------------------------------------------------------------------------------------------

function selectedKind() {
  return new FormData($("job-form")).get("kind");
}

function showKindFields() {
  const kind = selectedKind();
  for (const e of document.querySelectorAll("#job-form [data-kind]")) e.hidden = e.dataset.kind !== kind;
  $("format").options[0].textContent = kind === "export" ? "(choose a format)" : "(the destination's preferred)";
}

function jobSpec(form) {
  const value = (name) => String(form.get(name) ?? "").trim();
  const missing = [];
  const need = (name, label) => {
    if (!value(name)) missing.push(label);
    return value(name);
  };
  const kind = value("kind");
  const cloud = need("sourceCloud", "the source cloud");
  const name = need("sourceName", "the image or instance");
  const source = value("sourceType") === "instance" ? { cloud, instance: name } : { cloud, image: name };
  const format = value("format");
  let spec;
  if (kind === "export") {
    const path = need("outputPath", "the output file");
    if (!format) missing.push("the format");
    const target = value("ovaTarget");
    spec = { kind, source, destination: { kind: "file", path, format, ...(target ? { target } : {}) } };
  } else {
    const destinationCloud = need("destinationCloud", "the destination cloud");
    const newName = value("destinationName") || (source.instance ? `${source.instance}-image` : "");
    spec = {
      kind: "migrate",
      source,
      destination: {
        kind: "cloud",
        cloud: destinationCloud,
        ...(newName ? { name: newName } : {}),
        ...(format ? { format } : {}),
      },
    };
  }
  if (missing.length) throw new Error(`Missing: ${missing.join(", ")}.`);
  return spec;
}

function randomKey() {
  // crypto.randomUUID exists only on https or localhost; getRandomValues everywhere.
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

$("job-form").addEventListener("change", (event) => {
  if (event.target.name === "kind") showKindFields();
});

$("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = $("form-status");
  const button = event.target.querySelector("button[type=submit]");
  let spec;
  try {
    spec = jobSpec(new FormData(event.target));
  } catch (e) {
    status.textContent = e.message;
    return;
  }
  pendingKey ??= randomKey();
  button.disabled = true;
  status.textContent = "Submitting…";
  try {
    const response = await api("/v1/jobs", { method: "POST", body: spec, headers: { "idempotency-key": pendingKey } });
    const body = await response.json();
    const job = body.job ?? body;
    pendingKey = null;
    status.textContent = `Started job ${job.id}.`;
    await refresh();
  } catch (e) {
    // An answer (even a refusal) settles this submission; a lost connection keeps its key for the retry.
    if (e instanceof ApiError) pendingKey = null;
    status.textContent = `Not started: ${e.message}`;
  } finally {
    button.disabled = false;
  }
});

// ---- the token ----------------------------------------------------------------------------------------------

function askToken(why) {
  $("connection").textContent = why;
  // Asked once: the list keeps being refused every second until a token is given, without stealing focus.
  if (!$("token-section").hidden) return;
  $("token-section").hidden = false;
  $("token").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  $("token-section").hidden = true;
  $("forget-token").hidden = false;
  $("connection").textContent = "";
  refresh();
});

$("forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("forget-token").hidden = true;
  askToken("Token forgotten.");
});

showKindFields();
// A service without tokens needs none: the token is asked for when the service refuses a request (401).
$("forget-token").hidden = !token();
poll();
