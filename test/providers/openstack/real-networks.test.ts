/**
 * The cloud commands on the networks private clouds have, against the real test stack behind real parts
 * (test/infra/network/start.sh): nginx terminating TLS with a private CA in front of Keystone and both Glance
 * regions (Keystone's catalog rewritten to the https fronts, so every request is TLS), a front that requires a
 * client certificate, tinyproxy as the only way to the proxied fronts (they refuse any other source address),
 * and a server that accepts and never answers. An upload and a migrate run through TLS and through the proxy.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { makeSampleImage } from "../../../src/workflows/sample-image.js";
import { requireStack } from "../../helpers/openstack-stack.js";
import { scratch } from "../../helpers/tools.js";
import { doneEvent } from "../../workflows/helpers/workflow-steps.js";

const NET = process.env.NET ?? "/var/tmp/chromogenic-network";
const CA = join(NET, "ca.pem");
const OTHER_CA = join(NET, "other-ca.pem");
const PROXY = "http://127.0.0.1:18888";

before(async () => {
  await requireStack();
  if (!existsSync(CA)) {
    throw new Error(`${CA} is missing: start the network fronts with \`bash test/infra/network/start.sh\``);
  }
  try {
    const r = await fetch("http://127.0.0.1:18888/");
    await r.body?.cancel();
  } catch (e) {
    throw new Error(`tinyproxy does not answer (${(e as Error).message}): run \`bash test/infra/network/start.sh\``);
  }
});

interface Cloud {
  readonly authUrl: string;
  readonly region?: string;
  readonly extra?: Record<string, string | number | boolean>;
}

async function cloudsYaml(dir: string, clouds: Record<string, Cloud>): Promise<string> {
  const lines = ["clouds:"];
  for (const [name, c] of Object.entries(clouds)) {
    lines.push(`  ${name}:`, `    region_name: ${c.region ?? "RegionOne"}`);
    for (const [k, v] of Object.entries(c.extra ?? {})) lines.push(`    ${k}: ${JSON.stringify(v)}`);
    lines.push(
      "    auth:",
      `      auth_url: ${c.authUrl}`,
      "      username: user-a",
      "      password: pass-a",
      "      project_name: proj-a",
      "      user_domain_name: Default",
      "      project_domain_name: Default",
    );
  }
  const path = join(dir, "clouds.yaml");
  await writeFile(path, lines.join("\n") + "\n", { mode: 0o600 });
  return path;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** `chromogenic ARGS` with only the given OS_* and proxy variables (none from the parent). */
function cli(dir: string, clouds: string, env: Record<string, string>, ...args: string[]): Promise<Run> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("OS_") && !/^(https?|no)_proxy$/i.test(k)),
  );
  const started = Date.now();
  const child = spawn(process.execPath, ["bin/chromogenic.js", ...args], {
    env: { ...clean, OS_CLIENT_CONFIG_FILE: clouds, CHROMOGENIC_STATE_DIR: join(dir, "state"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })),
  );
}

/** Uploads a small disk, migrates it to RegionTwo as qcow2, checks both and deletes them. */
async function uploadAndMigrate(
  dir: string,
  clouds: string,
  env: Record<string, string>,
  route: { from: string; to: string; sourceAccess: string },
) {
  const { from, to } = route;
  const sample = join(dir, "sample.raw");
  if (!existsSync(sample)) await makeSampleImage(sample, 8 * 2 ** 20);
  const name = `chromo-net-${from}-${process.pid}`;
  const up = await cli(dir, clouds, env, "image", "upload", sample, name, "--cloud", from, "--json");
  assert.equal(up.code, 0, up.stderr);
  const uploaded = doneEvent(up.stdout) as unknown as { id: string };
  try {
    const m = await cli(dir, clouds, env, "migrate", "--from", from, "--to", to, "--image", uploaded.id,
      "--name", `${name}-copy`, "--format", "qcow2", "--json"); // prettier-ignore
    assert.equal(m.code, 0, m.stderr);
    const copy = doneEvent(m.stdout) as unknown as { image: { id: string }; plan: { sourceAccess: string } };
    assert.equal(copy.plan.sourceAccess, route.sourceAccess);
    const del = await cli(dir, clouds, env, "image", "delete", copy.image.id, "--cloud", to);
    assert.equal(del.code, 0, del.stderr);
  } finally {
    await cli(dir, clouds, env, "image", "delete", uploaded.id, "--cloud", from);
  }
}

test("through nginx's TLS with the private CA: an upload and a migrate to the other region", async (t) => {
  const dir = await scratch(t);
  const clouds = await cloudsYaml(dir, {
    tls: { authUrl: "https://127.0.0.1:15000/v3", extra: { cacert: CA } },
    "tls-r2": { authUrl: "https://127.0.0.1:15000/v3", region: "RegionTwo", extra: { cacert: CA } },
  });
  const before = (await readFile(join(NET, "nginx-access.log"), "utf8")).length;
  // Converted while read in place over HTTP Range, through the TLS front too.
  await uploadAndMigrate(dir, clouds, {}, { from: "tls", to: "tls-r2", sourceAccess: "random-access" });
  // Keystone's and both Glances' requests went through the TLS fronts (the catalog names only those).
  const log = (await readFile(join(NET, "nginx-access.log"), "utf8")).slice(before);
  assert.match(log, /"POST \/v3\/auth\/tokens HTTP\/1\.1" 201/);
  assert.match(log, /"PUT \/v2\/images\/[0-9a-f-]+\/file HTTP\/1\.1" 204/);
  assert.match(log, /"GET \/v2\/images\/[0-9a-f-]+\/file HTTP\/1\.1" 20[06]/);
});

test("a wrong CA and a wrong host name fail, naming the host and the CA; --insecure passes with a warning", async (t) => {
  const dir = await scratch(t);
  const clouds = await cloudsYaml(dir, {
    "wrong-ca": { authUrl: "https://127.0.0.1:15000/v3", extra: { cacert: OTHER_CA } },
    "wrong-host": { authUrl: "https://127.0.0.2:15000/v3", extra: { cacert: CA } },
    "no-ca": { authUrl: "https://127.0.0.1:15000/v3" },
  });
  const wrongCa = await cli(dir, clouds, {}, "image", "list", "--cloud", "wrong-ca");
  assert.notEqual(wrongCa.code, 0);
  assert.match(wrongCa.stderr, /the TLS certificate of 127\.0\.0\.1:15000 is not trusted/);
  assert.ok(wrongCa.stderr.includes(`the CA file ${OTHER_CA}`), wrongCa.stderr);
  const wrongHost = await cli(dir, clouds, {}, "image", "list", "--cloud", "wrong-host");
  assert.notEqual(wrongHost.code, 0);
  assert.match(wrongHost.stderr, /the TLS certificate of 127\.0\.0\.2:15000 is not for that host name/);
  assert.ok(wrongHost.stderr.includes(`the CA file ${CA}`), wrongHost.stderr);
  // OS_CACERT (what --os-cacert sets) fixes the cloud without a CA; --insecure one with the wrong CA.
  const viaEnv = await cli(dir, clouds, { OS_CACERT: CA }, "image", "list", "--cloud", "no-ca", "--json");
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  const viaFlag = await cli(dir, clouds, {}, "image", "list", "--cloud", "no-ca", "--os-cacert", CA, "--json");
  assert.equal(viaFlag.code, 0, viaFlag.stderr);
  const insecure = await cli(dir, clouds, {}, "image", "list", "--cloud", "wrong-ca", "--insecure", "--json");
  assert.equal(insecure.code, 0, insecure.stderr);
  assert.match(insecure.stderr, /warning: cloud "wrong-ca": TLS certificates are not checked/);
});

test("a TLS front that requires a client certificate: refused without, accepted with --os-cert/--os-key", async (t) => {
  const dir = await scratch(t);
  const clouds = await cloudsYaml(dir, { mtls: { authUrl: "https://127.0.0.1:15001/v3", extra: { cacert: CA } } });
  const without = await cli(dir, clouds, {}, "image", "list", "--cloud", "mtls");
  assert.notEqual(without.code, 0);
  assert.match(without.stderr, /HTTP 400.*No required SSL certificate was sent/);
  const withCert = await cli(dir, clouds, {}, "image", "list", "--cloud", "mtls", "--json",
    "--os-cert", join(NET, "client.pem"), "--os-key", join(NET, "client.key")); // prettier-ignore
  assert.equal(withCert.code, 0, withCert.stderr);
  // The same from clouds.yaml's cert and key.
  const inYaml = await cloudsYaml(dir, {
    mtls: {
      authUrl: "https://127.0.0.1:15001/v3",
      extra: { cacert: CA, cert: join(NET, "client.pem"), key: join(NET, "client.key") },
    },
  });
  assert.equal((await cli(dir, inYaml, {}, "image", "list", "--cloud", "mtls", "--json")).code, 0);
});

test("through tinyproxy, the only way in: an upload and a migrate; its log shows every service", async (t) => {
  const dir = await scratch(t);
  const clouds = await cloudsYaml(dir, {
    px: { authUrl: "https://127.0.0.1:25000/v3", extra: { cacert: CA } },
    "px-r2": { authUrl: "https://127.0.0.1:25000/v3", region: "RegionTwo", extra: { cacert: CA } },
  });
  // The direct path is refused.
  const direct = await cli(dir, clouds, {}, "image", "list", "--cloud", "px");
  assert.notEqual(direct.code, 0);
  assert.match(direct.stderr, /HTTP 403/);
  const before = (await readFile(join(NET, "tinyproxy.log"), "utf8")).length;
  // The random-access input connects directly only: through a proxy the source is downloaded first.
  await uploadAndMigrate(dir, clouds, { HTTPS_PROXY: PROXY }, { from: "px", to: "px-r2", sourceAccess: "download" });
  const log = (await readFile(join(NET, "tinyproxy.log"), "utf8")).slice(before);
  for (const port of [25000, 29292, 29293]) assert.match(log, new RegExp(`CONNECT 127\\.0\\.0\\.1:${port} `));
  // NO_PROXY sends the requests direct again, where they are refused.
  const bypass = await cli(
    dir,
    clouds,
    { HTTPS_PROXY: PROXY, NO_PROXY: "127.0.0.1" },
    "image",
    "list",
    "--cloud",
    "px",
  );
  assert.match(bypass.stderr, /HTTP 403/);
});

test("a server that accepts and never answers: the error comes within api_timeout (and its retries)", async (t) => {
  const dir = await scratch(t);
  const sockets = new Set<Socket>();
  const silent = createServer((s) => sockets.add(s.on("error", () => undefined)));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const clouds = await cloudsYaml(dir, {
    silent: { authUrl: `http://127.0.0.1:${port}/v3`, extra: { api_timeout: 1 } },
  });
  const r = await cli(dir, clouds, {}, "image", "list", "--cloud", "silent");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port} sent no reply within 1 s \\(api_timeout\\)`));
  // Four attempts of 1 s and the waits between them (≈ 2 s): well under a minute, never for ever.
  assert.ok(r.ms >= 4000 && r.ms < 20_000, `failed after ${r.ms} ms`);
  const flag = await cli(dir, clouds, {}, "image", "list", "--cloud", "silent", "--api-timeout", "0.5");
  assert.match(flag.stderr, /sent no reply within 0\.5 s \(api_timeout\)/);
  assert.ok(flag.ms < r.ms, "--api-timeout overrides clouds.yaml's api_timeout");
});
