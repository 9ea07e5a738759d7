/**
 * Keystone v3 authentication against the real test stack (test/infra/openstack/aio.sh): password from OS_*
 * variables and from clouds.yaml + secure.yaml, application credential, token; and the errors a user meets
 * (wrong password, unknown cloud, missing region, missing service), none of which may carry a secret.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadCloudConfig } from "../src/providers/openstack/cloud-config.js";
import { KeystoneSession } from "../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../src/providers/openstack/glance-client.js";
import {
  AuthenticationError,
  EndpointNotFoundError,
  OpenStackConfigError,
  OpenStackError,
} from "../src/providers/openstack/errors.js";
import { AUTH_URL, requireStack, stackCloud } from "./helpers/openstack-stack.js";
import { scratch } from "./helpers/tools.js";

before(requireStack);

test("password authentication from OS_* variables scopes to the project and finds Glance", async () => {
  const session = new KeystoneSession(stackCloud("user-a"));
  const scope = await session.scope();
  assert.equal(scope.projectName, "proj-a");
  assert.equal(scope.userName, "user-a");
  assert.equal(await session.endpoint("image"), "http://127.0.0.1:9292");
  assert.equal(await new KeystoneSession(stackCloud("user-a", "RegionTwo")).endpoint("image"), "http://127.0.0.1:9293");
});

test("clouds.yaml with the password in secure.yaml, chosen by OS_CLOUD", async (t) => {
  const dir = await scratch(t);
  await writeFile(
    join(dir, "clouds.yaml"),
    [
      "clouds:",
      "  stack-b:",
      "    auth:",
      `      auth_url: ${AUTH_URL}`,
      "      username: user-b",
      "      project_name: proj-b",
      "      user_domain_name: Default",
      "      project_domain_name: Default",
      "    region_name: RegionTwo",
      "    interface: public",
      "  other:",
      "    auth: { auth_url: http://example.invalid/v3, username: x, password: y }",
    ].join("\n"),
  );
  await writeFile(join(dir, "secure.yaml"), "clouds:\n  stack-b:\n    auth:\n      password: pass-b\n");
  const config = loadCloudConfig({ env: { OS_CLOUD: "stack-b" }, searchDirs: [dir] });
  assert.equal(config.name, "stack-b");
  assert.equal(config.regionName, "RegionTwo");
  const session = new KeystoneSession(config);
  assert.equal((await session.scope()).projectName, "proj-b");
  assert.equal(await session.endpoint("image"), "http://127.0.0.1:9293");
});

test("application credential authentication", async (t) => {
  const owner = new KeystoneSession(stackCloud("user-a"));
  const { userId } = await owner.scope();
  const name = `chromo-test-${process.pid}-${Date.now()}`;
  const created = await fetch(`${AUTH_URL}/users/${userId}/application_credentials`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-auth-token": await owner.token() },
    body: JSON.stringify({ application_credential: { name } }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  const cred = ((await created.json()) as { application_credential: { id: string; secret: string } })
    .application_credential;
  t.after(async () => {
    await fetch(`${AUTH_URL}/users/${userId}/application_credentials/${cred.id}`, {
      method: "DELETE",
      headers: { "x-auth-token": await owner.token() },
    });
  });
  const config = loadCloudConfig({
    env: {
      OS_AUTH_URL: AUTH_URL,
      OS_AUTH_TYPE: "v3applicationcredential",
      OS_APPLICATION_CREDENTIAL_ID: cred.id,
      OS_APPLICATION_CREDENTIAL_SECRET: cred.secret,
      OS_REGION_NAME: "RegionOne",
    },
    searchDirs: [],
  });
  const session = new KeystoneSession(config);
  assert.equal((await session.scope()).projectName, "proj-a");
  // It really works for Glance, not only for Keystone.
  const glance = new GlanceClient(session);
  for await (const image of glance.listImages({ pageSize: 5 })) assert.ok(image.id);
});

test("token authentication rescopes an existing token", async () => {
  const password = new KeystoneSession(stackCloud("user-a"));
  const config = loadCloudConfig({
    env: {
      OS_AUTH_URL: AUTH_URL,
      OS_AUTH_TYPE: "v3token",
      OS_TOKEN: await password.token(),
      OS_PROJECT_NAME: "proj-a",
      OS_PROJECT_DOMAIN_NAME: "Default",
      OS_REGION_NAME: "RegionOne",
    },
    searchDirs: [],
  });
  const session = new KeystoneSession(config);
  assert.equal((await session.scope()).projectName, "proj-a");
  assert.notEqual(await session.token(), await password.token());
});

test("a wrong password is a 401 AuthenticationError naming cloud and user, never the password", async () => {
  const session = new KeystoneSession(stackCloud("user-a", "RegionOne", { OS_PASSWORD: "wrong-horse-battery" }));
  const error = await session.token().then(
    () => assert.fail("authenticated with a wrong password"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof AuthenticationError, String(error));
  assert.equal(error.status, 401);
  assert.match(error.message, /cloud "envvars".*keystone POST \/v3\/auth\/tokens.*HTTP 401.*user "user-a"/);
  assert.doesNotMatch(error.message, /wrong-horse-battery/);
});

test("an unknown cloud name lists the known clouds", async (t) => {
  const dir = await scratch(t);
  await writeFile(
    join(dir, "clouds.yaml"),
    "clouds:\n  alpha:\n    auth: {auth_url: http://x/v3, username: u, password: p}\n",
  );
  assert.throws(
    () => loadCloudConfig({ cloud: "beta", env: {}, searchDirs: [dir] }),
    (e: unknown) =>
      e instanceof OpenStackConfigError &&
      /cloud "beta" is not defined in .*clouds.yaml; known clouds: alpha/.test(e.message),
  );
  assert.throws(() => loadCloudConfig({ env: {}, searchDirs: [dir] }), /set OS_CLOUD/);
});

test("a region the service is not in, an ambiguous region, and a missing service are clear errors", async () => {
  const missingRegion = new KeystoneSession(stackCloud("user-a", "RegionNine"));
  await assert.rejects(
    missingRegion.endpoint("image"),
    (e: unknown) =>
      e instanceof EndpointNotFoundError &&
      /"image" has no public endpoint in region "RegionNine" \(regions: RegionOne, RegionTwo\)/.test(e.message),
  );
  const noRegion = new KeystoneSession(stackCloud("user-a", ""));
  await assert.rejects(noRegion.endpoint("image"), /offered in several regions \(RegionOne, RegionTwo\)/);
  await assert.rejects(
    noRegion.endpoint("object-store"),
    (e: unknown) =>
      e instanceof EndpointNotFoundError && /no "object-store" service \(it offers: .*image/.test(e.message),
  );
});

test("a service error names the cloud, the call and the status, and never the token", async () => {
  const session = new KeystoneSession(stackCloud("user-a"));
  const glance = new GlanceClient(session);
  const error = await glance.getImage("00000000-0000-0000-0000-000000000000").catch((e: unknown) => e);
  assert.ok(error instanceof OpenStackError);
  assert.equal(error.status, 404);
  assert.match(error.message, /^cloud "envvars": glance GET \/v2\/images\/\{id\} → HTTP 404: /);
  assert.ok(!error.message.includes(await session.token()));
});
