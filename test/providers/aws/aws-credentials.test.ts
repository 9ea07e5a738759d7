/**
 * AWS credentials as users keep them, resolved through the SDK's providers against test servers written from
 * the AWS references, and used for a signed call (EC2 DescribeRegions) that the fake account checks:
 *
 * - STS AssumeRole / GetCallerIdentity: AWS STS API Reference
 *   (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html), test/helpers/aws/sts-server.ts;
 * - IMDSv2: Amazon EC2 User Guide, "Use IMDSv2" and "Retrieve security credentials from instance metadata"
 *   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html);
 * - SSO portal GetRoleCredentials: IAM Identity Center Portal API Reference
 *   (https://docs.aws.amazon.com/singlesignon/latest/PortalAPIReference/API_GetRoleCredentials.html);
 * - EC2 DescribeRegions: Amazon EC2 API Reference
 *   (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRegions.html).
 *
 * Verified against those servers, not against AWS.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { DescribeRegionsCommand } from "@aws-sdk/client-ec2";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import { FakeAwsAccount } from "../../helpers/aws/fake-aws-account.js";
import { StsServer } from "../../helpers/aws/sts-server.js";
import { ImdsServer } from "../../helpers/aws/imds-server.js";
import { SsoPortalServer } from "../../helpers/aws/sso-portal-server.js";
import { Ec2RegionsServer } from "../../helpers/aws/ec2-regions-server.js";
import { awsHome, cacheSsoToken } from "../../helpers/aws/aws-home.js";
import { scratch } from "../../helpers/tools.js";
import { makeTestPki } from "../../helpers/test-ca.js";
import { loadAwsCloudConfig } from "../../../src/providers/aws/aws-cloud-config.js";
import { expiredTokenRetry, refreshingCredentials } from "../../../src/providers/aws/aws-credentials.js";
import { Ec2Connection } from "../../../src/providers/ec2/ec2-connection.js";

const ROLE = "arn:aws:iam::123456789012:role/image-builder";
const EXTERNAL_ID = "chromogenic-ext-7731";

interface World {
  readonly account: FakeAwsAccount;
  readonly sts: StsServer;
  readonly sso: SsoPortalServer;
  readonly ec2: Ec2RegionsServer;
  readonly base: { accessKeyId: string; secretAccessKey: string };
  /** The servers as endpoint overrides. */
  readonly endpoints: Record<string, string>;
}

async function world(t: TestContext): Promise<World> {
  const account = new FakeAwsAccount({ region: "eu-west-1" });
  const [sts, sso, ec2] = await Promise.all([
    StsServer.start(account),
    SsoPortalServer.start(account),
    Ec2RegionsServer.start(account),
  ]);
  t.after(() => Promise.all([sts.close(), sso.close(), ec2.close()]));
  sts.addRole({ arn: ROLE, externalId: EXTERNAL_ID });
  const base = account.addCredential();
  return {
    account,
    sts,
    sso,
    ec2,
    base,
    endpoints: { AWS_ENDPOINT_URL_STS: sts.url, AWS_ENDPOINT_URL_SSO: sso.url, AWS_ENDPOINT_URL_EC2: ec2.url },
  };
}

/** DescribeRegions through the connection the provider will use; the key that signed it. */
async function describeRegions(connection: Ec2Connection, w: World): Promise<string> {
  const out = await connection.send<{ Regions?: { RegionName?: string }[] }>(new DescribeRegionsCommand({}), {
    call: "DescribeRegions",
  });
  assert.equal(out.Regions?.[0]?.RegionName, "eu-west-1");
  return w.ec2.acceptedKeys.at(-1)!;
}

function credentialsFile(w: World): string {
  return `[base]\naws_access_key_id = ${w.base.accessKeyId}\naws_secret_access_key = ${w.base.secretAccessKey}\n`;
}

const ROLE_PROFILE =
  "[profile builder]\nregion = eu-west-1\n" +
  `role_arn = ${ROLE}\nsource_profile = base\nexternal_id = ${EXTERNAL_ID}\nrole_session_name = chromogenic-test\nduration_seconds = 900\n`;

/** The assume-role profile `builder` (source profile `base`, external id) against `w`'s servers. */
async function builderCloud(t: TestContext, w: World) {
  const home = await awsHome(await scratch(t), { config: ROLE_PROFILE, credentials: credentialsFile(w) });
  return loadAwsCloudConfig("aws:builder", { ...home.env, ...w.endpoints });
}

test("static keys of a profile sign a call the account accepts", async (t) => {
  const w = await world(t);
  const home = await awsHome(await scratch(t), {
    config: "[profile base]\nregion = eu-west-1\n",
    credentials: credentialsFile(w),
  });
  const config = loadAwsCloudConfig("aws:base", { ...home.env, ...w.endpoints });
  assert.equal(config.authentication.kind, "static");
  const connection = Ec2Connection.forAws(config);
  t.after(() => connection.destroy());
  assert.equal(connection.endpoint, w.ec2.url);
  assert.equal(await describeRegions(connection, w), w.base.accessKeyId);
});

test("assume-role with an external id and a source profile goes through STS", async (t) => {
  const w = await world(t);
  const config = await builderCloud(t, w);
  assert.equal(config.authentication.kind, "assume-role");
  const connection = Ec2Connection.forAws(config);
  t.after(() => connection.destroy());
  const key = await describeRegions(connection, w);
  assert.equal(w.sts.assumed.length, 1);
  const assumed = w.sts.assumed[0]!;
  assert.deepEqual(
    [
      assumed.roleArn,
      assumed.externalId,
      assumed.sessionName,
      assumed.durationSeconds,
      assumed.callerKey,
      assumed.issuedKey,
    ],
    [ROLE, EXTERNAL_ID, "chromogenic-test", 900, w.base.accessKeyId, key],
  );
});

/** STS GetCallerIdentity signed with `credentials` (a Query-protocol POST); the reply's status and body. */
async function getCallerIdentity(url: string, credentials: AwsCredentialIdentityProvider, region: string) {
  const target = new URL(url);
  const body = "Action=GetCallerIdentity&Version=2011-06-15";
  const signer = new SignatureV4({ service: "sts", region, sha256: Sha256, credentials });
  const signed = await signer.sign(
    new HttpRequest({
      method: "POST",
      protocol: target.protocol,
      hostname: target.hostname,
      port: Number(target.port),
      path: "/",
      headers: { host: target.host, "content-type": "application/x-www-form-urlencoded" },
      body,
    }),
  );
  const reply = await fetch(url, { method: "POST", headers: signed.headers, body });
  return { status: reply.status, text: await reply.text() };
}

test("GetCallerIdentity signed with the assumed-role session names the role; an expired session is refused", async (t) => {
  const w = await world(t);
  const config = await builderCloud(t, w);
  const who = await getCallerIdentity(w.sts.url, config.credentials, config.region);
  assert.equal(who.status, 200, who.text);
  assert.match(who.text, /<Arn>arn:aws:sts::123456789012:assumed-role\/image-builder\/chromogenic-test<\/Arn>/);
  assert.match(who.text, /<Account>123456789012<\/Account>/);
  // A session past its expiry is refused (sessions of 1 second here, to wait for one to lapse).
  w.sts.sessionLifetimeMs = 1000;
  config.credentials.invalidate();
  const session = await config.credentials();
  await new Promise((r) => setTimeout(r, 1100));
  const late = await getCallerIdentity(w.sts.url, async () => session, config.region);
  assert.equal(late.status, 400);
  assert.match(late.text, /<Code>ExpiredToken<\/Code>/);
});

test("a wrong external id is refused by STS in a sentence naming the profile, without a secret", async (t) => {
  const w = await world(t);
  const home = await awsHome(await scratch(t), {
    config: ROLE_PROFILE.replace(EXTERNAL_ID, "not-the-one"),
    credentials: credentialsFile(w),
  });
  const connection = Ec2Connection.forAws(loadAwsCloudConfig("aws:builder", { ...home.env, ...w.endpoints }));
  t.after(() => connection.destroy());
  const e = await describeRegions(connection, w).then(
    () => assert.fail("a wrong external id was accepted"),
    (x: Error) => x,
  );
  assert.match(e.message, /cloud "aws:builder": the credentials of profile builder could not be obtained/);
  assert.match(e.message, /AccessDenied|not authorized to perform: sts:AssumeRole/);
  assert.equal((e as { code?: string }).code, "EAUTH");
  for (const secret of [w.base.secretAccessKey]) assert.ok(!e.message.includes(secret), "no secret in the message");
  assert.equal(w.ec2.requests.length, 0, "nothing was sent to EC2");
});

test("the profile's ca_bundle is the trust of the SDK's own STS client too", async (t) => {
  const w = await world(t);
  const pki = await makeTestPki(await scratch(t));
  const sts = await StsServer.start(w.account, { key: pki.serverKey, cert: pki.serverCert });
  t.after(() => sts.close());
  sts.addRole({ arn: ROLE, externalId: EXTERNAL_ID });
  for (const [caFile, works] of [
    [pki.caFile, true],
    [pki.otherCaFile, false],
  ] as const) {
    const home = await awsHome(await scratch(t), {
      config: ROLE_PROFILE + `ca_bundle = ${caFile}\n`,
      credentials: credentialsFile(w),
    });
    const config = loadAwsCloudConfig("aws:builder", { ...home.env, ...w.endpoints, AWS_ENDPOINT_URL_STS: sts.url });
    assert.deepEqual(config.tls.caFile?.path, caFile);
    // Fetched directly: through a client, the SDK's STS client would borrow that client's TLS agents instead.
    const outcome = await config.credentials().then(
      (c) => c.accessKeyId,
      (e: Error) => e,
    );
    if (works) {
      assert.equal(outcome, sts.assumed[0]?.issuedKey, "AssumeRole went over TLS to the server the CA vouches for");
    } else {
      assert.ok(outcome instanceof Error, "a server the CA does not vouch for is refused");
      assert.match(
        outcome.message,
        /cloud "aws:builder": the credentials of profile builder could not be obtained: .*(certificate|verify)/i,
      );
    }
  }
  assert.equal(sts.assumed.length, 1);
});

test("credential_process: the command's JSON is used", async (t) => {
  const w = await world(t);
  const dir = await scratch(t);
  const issued = w.account.addCredential({ sessionToken: true, expiresAt: Date.now() + 3600_000 });
  const script = join(dir, "credentials.mjs");
  await writeFile(
    script,
    `console.log(JSON.stringify(${JSON.stringify({
      Version: 1,
      AccessKeyId: issued.accessKeyId,
      SecretAccessKey: issued.secretAccessKey,
      SessionToken: issued.sessionToken,
      Expiration: issued.expiration!.toISOString(),
    })}));\n`,
  );
  const home = await awsHome(dir, {
    config: `[profile proc]\nregion = eu-west-1\ncredential_process = "${process.execPath}" "${script}"\n`,
  });
  const config = loadAwsCloudConfig("aws:proc", { ...home.env, ...w.endpoints });
  assert.equal(config.authentication.kind, "process");
  const connection = Ec2Connection.forAws(config);
  t.after(() => connection.destroy());
  assert.equal(await describeRegions(connection, w), issued.accessKeyId);
});

test("an SSO profile uses the token aws sso login cached; an expired one says to log in again", async (t) => {
  const w = await world(t);
  const home = await awsHome(await scratch(t), {
    config:
      "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n" +
      "sso_registration_scopes = sso:account:access\n\n" +
      `[profile dev]\nsso_session = corp\nsso_account_id = ${w.account.accountId}\nsso_role_name = Developer\n` +
      "region = eu-west-1\n\n" +
      // The older form: the start URL in the profile, the token cached under the URL's hash.
      "[profile legacy]\nsso_start_url = https://old.awsapps.com/start\nsso_region = eu-west-1\n" +
      `sso_account_id = ${w.account.accountId}\nsso_role_name = Developer\nregion = eu-west-1\n`,
  });
  // The SDK finds the token cache under the process's home.
  const savedHome = process.env.HOME;
  process.env.HOME = home.home;
  t.after(() => {
    process.env.HOME = savedHome;
  });
  w.sso.assignments.add(`${w.account.accountId}/Developer`);
  w.sso.grantToken("sso-access-token-1", Date.now() + 3600_000);
  const token = { region: "eu-west-1", startUrl: "https://corp.awsapps.com/start" };
  await cacheSsoToken(home.home, "corp", {
    ...token,
    accessToken: "sso-access-token-1",
    expiresAt: new Date(Date.now() + 3600_000),
  });
  const config = loadAwsCloudConfig("aws:dev", { ...home.env, ...w.endpoints });
  assert.equal(config.authentication.kind, "sso");
  assert.equal(config.accountId, w.account.accountId);
  const connection = Ec2Connection.forAws(config);
  t.after(() => connection.destroy());
  assert.equal(await describeRegions(connection, w), w.sso.issued[0]);
  w.sso.grantToken("sso-access-token-2", Date.now() + 3600_000);
  await cacheSsoToken(home.home, "https://old.awsapps.com/start", {
    region: "eu-west-1",
    startUrl: "https://old.awsapps.com/start",
    accessToken: "sso-access-token-2",
    expiresAt: new Date(Date.now() + 3600_000),
  });
  const legacy = Ec2Connection.forAws(loadAwsCloudConfig("aws:legacy", { ...home.env, ...w.endpoints }));
  t.after(() => legacy.destroy());
  assert.equal(await describeRegions(legacy, w), w.sso.issued[1]);

  await cacheSsoToken(home.home, "corp", {
    ...token,
    accessToken: "sso-access-token-1",
    expiresAt: new Date(Date.now() - 60_000),
  });
  const stale = Ec2Connection.forAws(loadAwsCloudConfig("aws:dev", { ...home.env, ...w.endpoints }));
  t.after(() => stale.destroy());
  const e = await describeRegions(stale, w).then(
    () => assert.fail("an expired SSO login was used"),
    (x: Error) => x,
  );
  assert.match(e.message, /cloud "aws:dev".*run aws sso login --profile dev/);
  assert.ok(!e.message.includes("sso-access-token-1"), "the SSO token is not in the message");
});

test("with no keys and no profile, the instance's role is read through IMDSv2", async (t) => {
  const w = await world(t);
  const imds = await ImdsServer.start(w.account);
  t.after(() => imds.close());
  const saved = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  // The SDK reads the metadata endpoint override from the process's environment itself.
  process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.url;
  t.after(() => {
    if (saved === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = saved;
  });
  const home = await awsHome(await scratch(t), {});
  const config = loadAwsCloudConfig("aws", { ...home.env, ...w.endpoints, AWS_REGION: "eu-west-1" });
  assert.equal(config.authentication.kind, "instance-metadata");
  const connection = Ec2Connection.forAws(config);
  t.after(() => connection.destroy());
  assert.equal(await describeRegions(connection, w), imds.issued[0]);
  // IMDSv2: a token first, then both GETs carrying it.
  assert.deepEqual(
    imds.requests.map((r) => `${r.method} ${r.url}`),
    [
      "PUT /latest/api/token",
      "GET /latest/meta-data/iam/security-credentials/",
      "GET /latest/meta-data/iam/security-credentials/conversion-host",
    ],
  );

  // A conversion host assuming another role with its instance role (credential_source).
  const other = "arn:aws:iam::123456789012:role/other-account-importer";
  w.sts.addRole({ arn: other });
  const hostHome = await awsHome(await scratch(t), {
    config: `[profile importer]\nregion = eu-west-1\nrole_arn = ${other}\ncredential_source = Ec2InstanceMetadata\n`,
  });
  const importer = loadAwsCloudConfig("aws:importer", { ...hostHome.env, ...w.endpoints });
  assert.match(importer.authentication.text, /assume role .*other-account-importer from Ec2InstanceMetadata/);
  const chained = Ec2Connection.forAws(importer);
  t.after(() => chained.destroy());
  const key = await describeRegions(chained, w);
  assert.deepEqual([w.sts.assumed.at(-1)?.callerKey, w.sts.assumed.at(-1)?.issuedKey], [imds.issued.at(-1), key]);
});

test("the IMDS server refuses a GET without a token (401), as an instance requiring IMDSv2 does", async (t) => {
  const account = new FakeAwsAccount();
  const imds = await ImdsServer.start(account);
  t.after(() => imds.close());
  const bare = await fetch(`${imds.url}/latest/meta-data/iam/security-credentials/`);
  assert.equal(bare.status, 401);
  const badTtl = await fetch(`${imds.url}/latest/api/token`, {
    method: "PUT",
    headers: { "x-aws-ec2-metadata-token-ttl-seconds": "21601" },
  });
  assert.equal(badTtl.status, 400);
});

test("sessions that expire during a long run are refreshed before they expire", async (t) => {
  const w = await world(t);
  w.sts.sessionLifetimeMs = 2000;
  // AWS sees each request 600 ms after it was signed (a slow link, a large block in flight): a key used until
  // the moment it expires would be refused; one refreshed ahead of time is not.
  w.account.now = () => Date.now() + 600;
  const connection = Ec2Connection.forAws(await builderCloud(t, w));
  t.after(() => connection.destroy());
  const started = Date.now();
  const keys = new Set<string>();
  while (Date.now() - started < 5000) {
    keys.add(await describeRegions(connection, w));
    await new Promise((r) => setTimeout(r, 100));
  }
  // Every request was accepted at the first try (none refused as expired and retried), over several sessions.
  assert.equal(w.ec2.requests.length, w.ec2.acceptedKeys.length, "no request was refused");
  assert.ok(keys.size >= 3, `sessions used: ${keys.size}`);
  assert.equal(w.sts.assumed.length, keys.size);
});

test("an ExpiredToken answer is refreshed and retried once; a second one in a row is a clear error", async (t) => {
  const w = await world(t);
  const connection = Ec2Connection.forAws(await builderCloud(t, w));
  t.after(() => connection.destroy());
  const first = await describeRegions(connection, w);
  w.ec2.refuseAsExpired = 1;
  const second = await describeRegions(connection, w);
  assert.notEqual(second, first, "a new session was fetched");
  assert.equal(w.sts.assumed.length, 2);
  w.ec2.refuseAsExpired = 2;
  const e = await describeRegions(connection, w).then(
    () => assert.fail("two expired answers in a row were not an error"),
    (x: Error) => x,
  );
  assert.match(
    e.message,
    /cloud "aws:builder": AWS refused the credentials as expired \(ExpiredToken\) twice in a row/,
  );
  assert.equal(w.sts.assumed.length, 3, "one refresh only");
  assert.equal(w.ec2.refuseAsExpired, 0);
});

test("many calls refused as expired together cause one refresh, and each is retried once", async (t) => {
  const w = await world(t);
  const connection = Ec2Connection.forAws(await builderCloud(t, w));
  t.after(() => connection.destroy());
  const first = await describeRegions(connection, w);
  w.ec2.refuseAsExpired = 8;
  const keys = await Promise.all(Array.from({ length: 8 }, () => describeRegions(connection, w)));
  assert.equal(w.sts.assumed.length, 2, "one refresh for the eight refusals");
  assert.deepEqual(new Set(keys), new Set([w.sts.assumed[1]!.issuedKey]));
  assert.notEqual(keys[0], first);
  assert.equal(w.ec2.requests.length, 1 + 8 + 8);
});

test("a call with a stream body refused as expired is not sent again; its error goes to the caller", async () => {
  const refreshed: unknown[] = [];
  const credentials = Object.assign(async () => ({ accessKeyId: "AKIA", secretAccessKey: "s" }), {
    invalidate: (refused?: unknown) => void refreshed.push(refused),
    memoized: true as const,
  });
  let handler: ((args: unknown) => Promise<unknown>) | undefined;
  let sent = 0;
  const expired = Object.assign(new Error("expired"), { name: "ExpiredToken" });
  expiredTokenRetry(credentials, "aws:test").applyToStack({
    add: (middleware: (next: unknown, context: object) => (args: unknown) => Promise<unknown>) => {
      handler = middleware(async () => {
        sent++;
        throw expired;
      }, {});
    },
  } as never);
  await assert.rejects(handler!({ input: { Body: Readable.from([Buffer.from("block")]) } }), (e) => e === expired);
  assert.deepEqual([sent, refreshed.length], [1, 1], "sent once, credentials forgotten for the caller's retry");
  await assert.rejects(handler!({ input: { Body: Buffer.from("block") } }), /twice in a row/);
  assert.equal(sent, 3, "bytes are sent again");
});

test("the refresh margin: 5 minutes before expiry, half the life of short sessions; expired ones refused", async () => {
  let clock = 1_000_000;
  let fetched = 0;
  const life = { ms: 3600_000 };
  const provider = refreshingCredentials(
    async () => ({
      accessKeyId: `AKIA${++fetched}`,
      secretAccessKey: "s",
      expiration: new Date(clock + life.ms),
    }),
    { cloud: "aws:test", now: () => clock },
  );
  assert.equal((await provider()).accessKeyId, "AKIA1");
  clock += 3600_000 - 5 * 60_000 - 1;
  assert.equal((await provider()).accessKeyId, "AKIA1", "kept until 5 minutes before expiry");
  clock += 1;
  assert.equal((await provider()).accessKeyId, "AKIA2", "refreshed 5 minutes before");
  life.ms = 60_000;
  clock += 3600_000;
  assert.equal((await provider()).accessKeyId, "AKIA3");
  clock += 29_999;
  assert.equal((await provider()).accessKeyId, "AKIA3", "a 1-minute session is kept for half its life");
  clock += 1;
  assert.equal((await provider()).accessKeyId, "AKIA4");
  const both = await Promise.all([
    provider({ forceRefresh: true } as never),
    provider({ forceRefresh: true } as never),
  ]);
  assert.equal(both[0]!.accessKeyId, both[1]!.accessKeyId, "concurrent refreshes share one fetch");
  life.ms = -1;
  await assert.rejects(provider({ forceRefresh: true } as never), /aws:test.*expired already/);
});

test("a missing source profile and a failing credential_process are sentences naming the profile", async (t) => {
  const home = await awsHome(await scratch(t), {
    config:
      "[profile orphan]\nregion = eu-west-1\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = ghost\n\n" +
      `[profile failing]\nregion = eu-west-1\ncredential_process = "${process.execPath}" -e "process.exit(3)" --token=cp-secret-88\n`,
  });
  const cases: [string, RegExp][] = [
    [
      "aws:orphan",
      /^cloud "aws:orphan": the credentials of profile orphan could not be obtained: its source profile ghost is not defined or has no credentials in /,
    ],
    [
      "aws:failing",
      /^cloud "aws:failing": the credentials of profile failing could not be obtained: its credential_process command failed/,
    ],
  ];
  for (const [name, sentence] of cases) {
    const e = await loadAwsCloudConfig(name, home.env)
      .credentials()
      .then(
        () => assert.fail(`${name} gave credentials`),
        (x: Error) => x,
      );
    assert.match(e.message, sentence);
    assert.ok(!e.message.includes("cp-secret-88"), "the command line is not quoted");
  }
});
