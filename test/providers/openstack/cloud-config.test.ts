/**
 * Where clouds.yaml and secure.yaml are found (openstacksdk's list, OS_CLIENT_CONFIG_FILE in front of it) and
 * how a cloud's connection settings are read: cacert, verify/insecure, cert, key, api_timeout, and the OS_*
 * variables that override them as the openstack CLI's options do.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { defaultSearchDirs, loadCloudConfig } from "../../../src/providers/openstack/cloud-config.js";
import { listClouds } from "../../../src/workflows/cloud-names.js";
import { scratch } from "../../helpers/tools.js";

const CLOUD = `clouds:
  prod:
    auth: {auth_url: "https://keystone.example:5000/v3", username: u, project_name: p}
    cacert: /etc/ssl/private-ca.pem
    cert: /etc/ssl/client.pem
    key: /etc/ssl/client.key
    api_timeout: 45
`;

test("openstacksdk's folders: XDG_CONFIG_HOME, ~/.config, XDG_CONFIG_DIRS, /etc/openstack", () => {
  const dirs = defaultSearchDirs({ HOME: "/home/u", XDG_CONFIG_HOME: "/x", XDG_CONFIG_DIRS: "/site:/other" });
  assert.deepEqual(dirs, [
    process.cwd(),
    "/x/openstack",
    "/home/u/.config/openstack",
    "/site/openstack",
    "/etc/openstack",
  ]);
  assert.deepEqual(defaultSearchDirs({ HOME: "/home/u" }).slice(1), [
    "/home/u/.config/openstack",
    "/etc/xdg/openstack",
    "/etc/openstack",
  ]);
});

test("OS_CLIENT_CONFIG_FILE goes first; a missing one is passed over; clouds.json and secure.yaml count", async (t) => {
  const dir = await scratch(t);
  const home = join(dir, "home");
  await mkdir(join(home, ".config", "openstack"), { recursive: true });
  await writeFile(
    join(home, ".config", "openstack", "clouds.json"),
    JSON.stringify({ clouds: { j: { auth: { auth_url: "http://j:5000", username: "u" } } } }),
  );
  await writeFile(
    join(home, ".config", "openstack", "secure.yaml"),
    "clouds:\n  j:\n    auth: {password: from-secure}\n",
  );
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, ".config") };
  const j = loadCloudConfig({ cloud: "j", env: { ...env, OS_CLIENT_CONFIG_FILE: join(dir, "missing.yaml") } });
  assert.equal(j.auth.password, "from-secure");
  const named = join(dir, "named.yaml");
  await writeFile(named, CLOUD.replace("auth: {", "auth: {password: s, "));
  assert.equal(
    loadCloudConfig({ cloud: "prod", env: { ...env, OS_CLIENT_CONFIG_FILE: named }, searchDirs: [] }).name,
    "prod",
  );
  assert.deepEqual(
    listClouds({ env: { ...env, OS_CLIENT_CONFIG_FILE: join(dir, "missing.yaml") } }).map((c) => c.name),
    ["local", "j"],
  );
});

test("cacert, cert, key and api_timeout come from the cloud's entry; verify: false and insecure: true turn checks off", async (t) => {
  const dir = await scratch(t);
  const file = join(dir, "clouds.yaml");
  await writeFile(file, CLOUD.replace("auth: {", "auth: {password: s, "));
  const env = { OS_CLIENT_CONFIG_FILE: file };
  const prod = loadCloudConfig({ cloud: "prod", env });
  assert.deepEqual(prod.network, {
    cacert: { path: "/etc/ssl/private-ca.pem", from: 'clouds.yaml "cacert" of cloud "prod"' },
    verify: true,
    cert: "/etc/ssl/client.pem",
    key: "/etc/ssl/client.key",
    apiTimeoutSeconds: 45,
  });
  // The openstack CLI's variables (and so its options) override the file.
  const over = loadCloudConfig({
    cloud: "prod",
    env: { ...env, OS_CACERT: "/tmp/ca.pem", OS_INSECURE: "true", OS_API_TIMEOUT: "2.5", OS_CERT: "/c", OS_KEY: "/k" },
  });
  assert.deepEqual(over.network, {
    cacert: { path: "/tmp/ca.pem", from: "OS_CACERT (or --os-cacert)" },
    verify: false,
    cert: "/c",
    key: "/k",
    apiTimeoutSeconds: 2.5,
  });
  for (const setting of ["verify: false", "insecure: true", "verify: 'no'"]) {
    await writeFile(file, CLOUD.replace("auth: {", "auth: {password: s, ").replace("api_timeout: 45", setting));
    assert.equal(loadCloudConfig({ cloud: "prod", env }).network.verify, false, setting);
  }
  await writeFile(file, CLOUD.replace("auth: {", "auth: {password: s, ").replace("45", "soon"));
  assert.throws(() => loadCloudConfig({ cloud: "prod", env }), /cloud "prod": api_timeout must be a number of seconds/);
  await writeFile(file, CLOUD.replace("auth: {", "auth: {password: s, "));
  assert.throws(
    () => loadCloudConfig({ cloud: "prod", env: { ...env, OS_INSECURE: "maybe" } }),
    /OS_INSECURE \(--insecure\) must be true or false/,
  );
});

test("an openrc cloud takes the same variables", () => {
  const c = loadCloudConfig({
    env: {
      OS_AUTH_URL: "https://k:5000/v3",
      OS_USERNAME: "u",
      OS_PASSWORD: "p",
      OS_CACERT: "/ca.pem",
      OS_API_TIMEOUT: "9",
    },
  });
  assert.equal(c.network.cacert?.path, "/ca.pem");
  assert.equal(c.network.apiTimeoutSeconds, 9);
  assert.equal(c.network.verify, true);
});
