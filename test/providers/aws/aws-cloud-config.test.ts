/**
 * AWS cloud names and the profiles behind them: how `aws`, `aws:PROFILE[/REGION]` and `aws/REGION` are read
 * from ~/.aws/config, ~/.aws/credentials and the AWS_* variables (no request made), the sentences a missing
 * profile, region or credential gives, and `chromogenic clouds` listing every profile with how it
 * authenticates and never a secret (JSON and table).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { awsHome } from "../../helpers/aws/aws-home.js";
import { runCli, scratch } from "../../helpers/tools.js";
import { listAwsClouds, loadAwsCloudConfig, parseAwsCloudName } from "../../../src/providers/aws/aws-cloud-config.js";

/** Every secret the files and variables below hold; none may be printed. */
const SECRETS = [
  "static-secret-Zq81",
  "static-session-token-Pw3",
  "env-secret-Lk20",
  "env-session-token-Ty7",
  "ext-id-value-4491",
  "--secret-arg=hunter2",
];

const CONFIG = `[default]
region = eu-west-1

[profile static]
region = eu-central-1

[profile builder]
role_arn = arn:aws:iam::123456789012:role/image-builder
source_profile = static
external_id = ext-id-value-4491
role_session_name = chromogenic

[profile proc]
region = us-east-1
credential_process = /usr/local/bin/get-creds --secret-arg=hunter2

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1

[profile dev]
sso_session = corp
sso_account_id = 210987654321
sso_role_name = Developer
region = us-gov-west-1

[profile noregion]
aws_access_key_id = AKIANOREGION0000
aws_secret_access_key = static-secret-Zq81

[profile nothing]
region = us-east-1

[profile badservices]
region = us-east-1
services = missing
aws_access_key_id = AKIABADSERVICES0
aws_secret_access_key = static-secret-Zq81
`;

const CREDENTIALS = `[static]
aws_access_key_id = AKIASTATIC000001
aws_secret_access_key = static-secret-Zq81
aws_session_token = static-session-token-Pw3

[default]
aws_access_key_id = AKIADEFAULT00002
aws_secret_access_key = static-secret-Zq81
`;

const ENV_KEYS = {
  AWS_ACCESS_KEY_ID: "AKIAENVIRONMENT3",
  AWS_SECRET_ACCESS_KEY: "env-secret-Lk20",
  AWS_SESSION_TOKEN: "env-session-token-Ty7",
};

test("cloud names: profile and region parts", () => {
  assert.deepEqual(parseAwsCloudName("aws"), {});
  assert.deepEqual(parseAwsCloudName("aws:dev"), { profile: "dev" });
  assert.deepEqual(parseAwsCloudName("aws:dev/us-gov-west-1"), { profile: "dev", region: "us-gov-west-1" });
  assert.deepEqual(parseAwsCloudName("aws/cn-north-1"), { region: "cn-north-1" });
  // A profile name may hold "/": only a trailing region is a region.
  assert.deepEqual(parseAwsCloudName("aws:team/dev"), { profile: "team/dev" });
  assert.throws(() => parseAwsCloudName("aws/mars"), /cloud "aws\/mars": "mars" is not a region name/);
  assert.throws(() => parseAwsCloudName("aws:"), /names no profile/);
});

test("profiles load with their region, account and how they authenticate; the name's region wins", async (t) => {
  const home = await awsHome(await scratch(t), { config: CONFIG, credentials: CREDENTIALS });
  const dev = loadAwsCloudConfig("aws:dev", home.env);
  assert.deepEqual(
    [dev.profile, dev.region, dev.partition, dev.accountId, dev.authentication.kind],
    ["dev", "us-gov-west-1", "aws-us-gov", "210987654321", "sso"],
  );
  assert.match(dev.source, new RegExp(`^${home.configFile}:\\d+$`));
  const builder = loadAwsCloudConfig("aws:builder/ap-southeast-2", home.env);
  assert.deepEqual([builder.region, builder.authentication.kind], ["ap-southeast-2", "assume-role"]);
  // AWS_REGION beats the profile's region, as in the AWS CLI.
  assert.equal(loadAwsCloudConfig("aws:static", { ...home.env, AWS_REGION: "sa-east-1" }).region, "sa-east-1");
  // `aws`: the AWS_* keys first (settings such as the region still from AWS_PROFILE / default), else that profile.
  const fromEnv = loadAwsCloudConfig("aws", { ...home.env, ...ENV_KEYS });
  assert.deepEqual(
    [fromEnv.authentication.kind, fromEnv.profile, fromEnv.region],
    ["environment", undefined, "eu-west-1"],
  );
  const byDefault = loadAwsCloudConfig("aws", home.env);
  assert.deepEqual([byDefault.profile, byDefault.region], ["default", "eu-west-1"]);
  assert.equal(loadAwsCloudConfig("aws", { ...home.env, AWS_PROFILE: "proc" }).profile, "proc");
});

test("a missing profile, region, credential or services section is one sentence naming the profile", async (t) => {
  const home = await awsHome(await scratch(t), { config: CONFIG, credentials: CREDENTIALS });
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      "aws:nope",
      {},
      /cloud "aws:nope": no profile "nope" in .*config or .*credentials; profiles there: default, static, builder/,
    ],
    ["aws", { AWS_PROFILE: "gone" }, /cloud "aws": no profile "gone"/],
    [
      "aws:noregion",
      {},
      /cloud "aws:noregion" \(profile noregion\): no region: set region in the profile .*AWS_REGION, or name one as aws:noregion\/REGION/,
    ],
    ["aws:nothing", {}, /cloud "aws:nothing": profile nothing .* has no credentials: no aws_access_key_id, role_arn/],
    [
      "aws:badservices",
      {},
      /cloud "aws:badservices" \(profile badservices\): the profile names services missing, which .*config lacks/,
    ],
  ];
  for (const [name, env, problem] of cases) {
    const e = (() => {
      try {
        loadAwsCloudConfig(name, { ...home.env, ...env });
      } catch (x) {
        return x as Error & { code?: string };
      }
      return assert.fail(`${name} loaded`);
    })();
    assert.match(e.message, problem);
    assert.equal(e.code, "ECONFIG");
    for (const secret of SECRETS) assert.ok(!e.message.includes(secret), `${secret} in "${e.message}"`);
  }
});

test("the list: each profile with how it authenticates, the AWS_* keys as `aws`, never a secret", async (t) => {
  const home = await awsHome(await scratch(t), { config: CONFIG, credentials: CREDENTIALS });
  const clouds = listAwsClouds({ ...home.env, ...ENV_KEYS });
  const auth = Object.fromEntries(clouds.map((c) => [c.name, c.auth]));
  assert.deepEqual(auth, {
    aws: "access key ****ENT3 and a session token (AWS_ACCESS_KEY_ID)",
    "aws:default": "access key ****0002",
    "aws:static": "access key ****0001 and a session token",
    "aws:builder":
      "assume role arn:aws:iam::123456789012:role/image-builder from profile static (access key ****0001 and a " +
      "session token), with an external id",
    "aws:proc": "an external command (credential_process)",
    "aws:dev": "IAM Identity Center (SSO), session corp, account 210987654321, role Developer",
    "aws:noregion": "access key ****0000",
    "aws:nothing": "no credentials in the profile",
    "aws:badservices": "access key ****CES0",
  });
  assert.equal(clouds.find((c) => c.name === "aws:dev")?.region, "us-gov-west-1");
  const text = JSON.stringify(clouds);
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} listed`);
});

test("chromogenic clouds shows the AWS profiles without a secret (JSON and table)", async (t) => {
  const dir = await scratch(t);
  const home = await awsHome(dir, { config: CONFIG, credentials: CREDENTIALS });
  const env = {
    ...home.env,
    ...ENV_KEYS,
    OS_CLIENT_CONFIG_FILE: join(dir, "no-clouds.yaml"),
    XDG_CONFIG_HOME: join(dir, "xdg"),
    CHROMOGENIC_STATE_DIR: join(dir, "state"),
  };
  const json = await runCli(["clouds", "--json"], env);
  assert.equal(json.code, 0, json.stderr);
  const done = json.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { event: string; clouds?: { name: string; kind: string; auth?: string }[] })
    .find((e) => e.event === "done");
  const aws = (done?.clouds ?? []).filter((c) => c.kind === "aws");
  assert.deepEqual(
    aws.map((c) => c.name),
    [
      "aws",
      "aws:default",
      "aws:static",
      "aws:builder",
      "aws:proc",
      "aws:dev",
      "aws:noregion",
      "aws:nothing",
      "aws:badservices",
    ],
  );
  const table = await runCli(["clouds"], env);
  assert.equal(table.code, 0, table.stderr);
  assert.match(
    table.stdout,
    /^aws:builder +aws +assume role arn:aws:iam::123456789012:role\/image-builder from profile static/m,
  );
  assert.match(table.stdout, /^aws:dev +aws +IAM Identity Center \(SSO\), session corp, .*region us-gov-west-1/m);
  for (const output of [json.stdout, json.stderr, table.stdout, table.stderr]) {
    for (const secret of SECRETS) assert.ok(!output.includes(secret), `${secret} printed`);
  }
});
