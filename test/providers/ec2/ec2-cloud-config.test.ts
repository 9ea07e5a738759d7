/**
 * EC2-family credentials as euca2ools users keep them: a eucarc's variables (and AWS_CREDENTIAL_FILE), and
 * euca2ools 3's .ini files with their lookup rules (wildcard sections, `use`, a short name finding its
 * namespaced region, [DEFAULT] and interpolation), the errors of a broken file, and `chromogenic clouds`
 * listing them all without a secret. Fixtures are written here, in euca2ools' own layout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadEc2CloudConfig } from "../../../src/providers/ec2/ec2-cloud-names.js";
import { euca2oolsConfigFiles } from "../../../src/providers/ec2/euca2ools-config.js";
import { errorCode } from "../../../src/util/errors.js";
import { runCli, scratch } from "../../helpers/tools.js";

const EUCARC = {
  EC2_URL: "http://euca.example:8773/services/compute",
  S3_URL: "http://euca.example:8773/services/objectstorage",
  EC2_ACCESS_KEY: "AKIEUCARCKEY",
  EC2_SECRET_KEY: "eucarc-secret-value",
  EC2_USER_ID: "123456789012",
  EC2_CERT: "/creds/euca2-admin-cert.pem",
  EC2_PRIVATE_KEY: "/creds/euca2-admin-pk.pem",
  EUCALYPTUS_CERT: "/creds/cloud-cert.pem",
};

test("a eucarc's variables make the env-euca cloud", () => {
  const c = loadEc2CloudConfig("env-euca", EUCARC);
  assert.deepEqual(
    { ...c, source: undefined },
    {
      name: "env-euca",
      kind: "eucalyptus",
      source: undefined,
      ec2Url: EUCARC.EC2_URL,
      s3Url: EUCARC.S3_URL,
      region: "eucalyptus",
      accessKeyId: "AKIEUCARCKEY",
      secretAccessKey: "eucarc-secret-value",
      sessionToken: undefined,
      userId: "123456789012",
      certPath: "/creds/euca2-admin-cert.pem",
      privateKeyPath: "/creds/euca2-admin-pk.pem",
      cloudCertPath: "/creds/cloud-cert.pem",
      tls: { verify: true },
    },
  );
  // euca2ools 3's own names win over the older EC2_* ones; REGION::URL names the signing region.
  const aws = loadEc2CloudConfig("env-euca", {
    ...EUCARC,
    EC2_URL: "us-west-2::https://ec2.us-west-2.amazonaws.com/",
    AWS_ACCESS_KEY_ID: "AKIAWSNAME",
    AWS_SECRET_ACCESS_KEY: "aws-secret",
    AWS_SESSION_TOKEN: "token",
    OS_CACERT: "/etc/ssl/ca.pem",
  });
  const { kind, region, ec2Url, accessKeyId, secretAccessKey, sessionToken, tls } = aws;
  assert.deepEqual(
    { kind, region, ec2Url, accessKeyId, secretAccessKey, sessionToken, tls },
    {
      kind: "ec2",
      region: "us-west-2",
      ec2Url: "https://ec2.us-west-2.amazonaws.com/",
      accessKeyId: "AKIAWSNAME",
      secretAccessKey: "aws-secret",
      sessionToken: "token",
      tls: { caFile: { path: "/etc/ssl/ca.pem", from: "OS_CACERT (or --os-cacert)" }, verify: true },
    },
  );
});

test("AWS_CREDENTIAL_FILE gives the key pair when the variables do not", async (t) => {
  const dir = await scratch(t);
  await writeFile(join(dir, "iamrc"), "AWSAccessKeyId=AKIFROMFILE\nAWSSecretKey=file-secret # a comment\n");
  const { EC2_ACCESS_KEY: _k, EC2_SECRET_KEY: _s, ...rest } = EUCARC;
  const c = loadEc2CloudConfig("env-euca", { ...rest, AWS_CREDENTIAL_FILE: join(dir, "iamrc") });
  assert.equal(c.accessKeyId, "AKIFROMFILE");
  assert.equal(c.secretAccessKey, "file-secret");
  const none = (() => {
    try {
      return loadEc2CloudConfig("env-euca", rest);
    } catch (e) {
      return e as Error;
    }
  })();
  assert.equal(errorCode(none), "ECONFIG");
  assert.match((none as Error).message, /^cloud "env-euca": no access key id \(eucarc variables/);
  assert.throws(() => loadEc2CloudConfig("env-euca", {}), /EC2_URL is not set \(source your eucarc/);
  assert.throws(() => loadEc2CloudConfig("env-euca", { ...EUCARC, EC2_URL: "ftp://x" }), /is not an http\(s\) URL/);
});

/** euca2ools' layout: a system file, conf.d with a region file, the user's ~/.euca with credentials. */
async function euca2oolsTree(dir: string): Promise<Record<string, string>> {
  await mkdir(join(dir, "etc", "conf.d"), { recursive: true });
  await mkdir(join(dir, "home", ".euca"), { recursive: true });
  await writeFile(
    join(dir, "etc", "euca2ools.ini"),
    "; the system file\n[global]\ndefault-region = cloud1\n\n[region aws:*]\nverify-ssl = true\ncertificate = /usr/share/euca2ools/certs/cert-ec2.pem\n",
  );
  await writeFile(
    join(dir, "etc", "conf.d", "aws.ini"),
    "[region aws:us-east-1]\nec2-url = https://ec2.us-east-1.amazonaws.com/\ns3-url = https://s3.amazonaws.com/\n" +
      "[region aws:eu-west-1]\nec2-url = https://ec2.eu-west-1.amazonaws.com/\n",
  );
  await writeFile(
    join(dir, "etc", "conf.d", "cloud1.ini"),
    [
      "[DEFAULT]",
      "host = euca1.example",
      "",
      "[region cloud1]",
      "ec2-url = http://%(host)s:8773/services/compute/",
      "s3-url: http://%(host)s:8773/services/objectstorage/",
      "certificate = ~/.euca/cloud1-cert.pem",
      "user = admin",
      "verify-ssl = false",
      "",
      "[region cloud2]",
      "ec2-url = use cloud1",
      "s3-url = https://s3.cloud2.example/",
      "name = cloud-two",
      "user = admin",
    ].join("\n"),
  );
  await writeFile(
    join(dir, "home", ".euca", "admin.ini"),
    [
      "[user admin]",
      "key-id = AKIADMIN",
      "secret-key = admin-secret-%%-value",
      "account-id = 000011112222",
      "certificate = ~/.euca/admin-cert.pem",
      "private-key = ~/.euca/admin-pk.pem",
      "",
      "[user other]",
      "key-id = AKIOTHER",
      "secret-key = other-secret",
      "[user aws]",
      "key-id = AKIAWS",
      "secret-key = aws-secret",
    ].join("\n"),
  );
  await writeFile(join(dir, "home", ".euca", "notes.txt"), "not an ini file, not read");
  return {
    HOME: join(dir, "home"),
    EUCA_CONFIG_PATH: `${dir}/etc/euca2ools.ini:${dir}/etc/conf.d/*.ini:~/.euca/*.ini`,
  };
}

test("euca2ools .ini files: regions, users, [DEFAULT], interpolation, `use`, wildcards and short names", async (t) => {
  const dir = await scratch(t);
  const env = await euca2oolsTree(dir);
  assert.deepEqual(euca2oolsConfigFiles(env), [
    join(dir, "etc", "euca2ools.ini"),
    join(dir, "etc", "conf.d", "aws.ini"),
    join(dir, "etc", "conf.d", "cloud1.ini"),
    join(dir, "home", ".euca", "admin.ini"),
  ]);
  const c1 = loadEc2CloudConfig("euca:cloud1", env);
  assert.equal(c1.kind, "eucalyptus");
  assert.equal(c1.ec2Url, "http://euca1.example:8773/services/compute/");
  assert.equal(c1.s3Url, "http://euca1.example:8773/services/objectstorage/");
  assert.equal(c1.region, "cloud1");
  assert.equal(c1.accessKeyId, "AKIADMIN");
  assert.equal(c1.secretAccessKey, "admin-secret-%-value");
  assert.equal(c1.userId, "000011112222");
  assert.equal(c1.certPath, join(dir, "home", ".euca", "admin-cert.pem"));
  assert.equal(c1.privateKeyPath, join(dir, "home", ".euca", "admin-pk.pem"));
  assert.equal(c1.cloudCertPath, join(dir, "home", ".euca", "cloud1-cert.pem"));
  assert.deepEqual(c1.tls, { verify: false }, "verify-ssl = false is honoured");
  assert.match(c1.source, /cloud1\.ini:4; user admin from .*admin\.ini:1$/);
  // `euca` alone is [global] default-region; EUCA_DEFAULT_REGION overrides it, USER@ picks another user.
  assert.equal(loadEc2CloudConfig("euca", env).name, "euca:cloud1");
  assert.equal(loadEc2CloudConfig("euca", { ...env, EUCA_DEFAULT_REGION: "other@cloud1" }).accessKeyId, "AKIOTHER");
  // `use cloud1` borrows the URL, and with it the signing name of the section it comes from.
  const c2 = loadEc2CloudConfig("euca:cloud2", env);
  assert.equal(c2.region, "cloud1");
  assert.equal(c2.ec2Url, "http://euca1.example:8773/services/compute/");
  assert.equal(c2.s3Url, "https://s3.cloud2.example/");
  // A short name finds its namespaced region; [region aws:*] fills what it does not say.
  const aws = loadEc2CloudConfig("euca:aws@us-east-1", env);
  assert.equal(aws.kind, "ec2");
  assert.equal(aws.ec2Url, "https://ec2.us-east-1.amazonaws.com/");
  assert.equal(aws.region, "us-east-1");
  assert.equal(aws.cloudCertPath, "/usr/share/euca2ools/certs/cert-ec2.pem");
  assert.deepEqual(aws.tls, { verify: true });
});

test("euca2ools .ini errors name the file, line and what to do", async (t) => {
  const dir = await scratch(t);
  const env = await euca2oolsTree(dir);
  assert.throws(() => loadEc2CloudConfig("euca:nowhere", env), {
    message: new RegExp(
      `^cloud "euca:nowhere": no region "nowhere" with an ec2-url \\(.*\\); configured: euca:aws:us-east-1, ` +
        "euca:aws:eu-west-1, euca:cloud1, euca:cloud2$",
    ),
  });
  assert.throws(
    () => loadEc2CloudConfig("euca:aws:eu-west-1", env),
    /no user for region aws:eu-west-1: add "user = NAME"/,
  );
  assert.throws(
    () => loadEc2CloudConfig("euca:ghost@cloud1", env),
    /no \[user ghost\] section with key-id and secret-key/,
  );
  const broken = join(dir, "broken.ini");
  for (const [text, problem] of [
    ["key = value\n", /broken\.ini:1: an option before any \[section\] header/],
    ["[region a]\nec2-url = http://a/\n[region a]\n", /broken\.ini:3: section \[region a\] appears twice/],
    ["[region a]\nec2-url = x\nEC2-URL = y\n", /broken\.ini:3: option "ec2-url" appears twice in section \[region a\]/],
    ["[region a]\njust words\n", /broken\.ini:2: "just words" is neither a \[section\], a key = value nor a comment/],
    ["[region a:]\nec2-url = http://a/\n", /region name "a:" must have no empty ":" part and no "@"/],
    ["[region a]\nec2-url = http://a/%s\nuser = u\n", /"%" must be followed by "%" or "\(name\)s"/],
  ] as const) {
    await writeFile(broken, text);
    const e = (() => {
      try {
        return loadEc2CloudConfig("euca:a", { HOME: dir, EUCA_CONFIG_PATH: broken });
      } catch (x) {
        return x as Error;
      }
    })();
    assert.equal(errorCode(e), "ECONFIG", text);
    assert.match((e as Error).message, problem);
  }
});

test("chromogenic clouds lists eucarc and euca2ools clouds without a secret", async (t) => {
  const dir = await scratch(t);
  const tree = await euca2oolsTree(dir);
  const env = {
    PATH: process.env.PATH,
    ...tree,
    ...EUCARC,
    OS_CLIENT_CONFIG_FILE: join(dir, "no-clouds.yaml"),
    XDG_CONFIG_HOME: join(dir, "xdg"),
    CHROMOGENIC_STATE_DIR: join(dir, "state"),
  };
  const r = await runCli(["clouds", "--json"], env);
  assert.equal(r.code, 0, r.stderr);
  const done = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { event: string; clouds?: Record<string, string>[] })
    .find((e) => e.event === "done");
  const clouds = done?.clouds ?? [];
  const byName = Object.fromEntries(clouds.map((c) => [c.name, c]));
  assert.deepEqual(
    clouds.map((c) => [c.name, c.kind]).filter(([n]) => n !== "local"),
    [
      ["euca:aws:us-east-1", "ec2"],
      ["euca:aws:eu-west-1", "ec2"],
      ["euca:cloud1", "eucalyptus"],
      ["euca:cloud2", "eucalyptus"],
      ["env-euca", "eucalyptus"],
    ],
  );
  assert.equal(byName["euca:cloud1"]!.ec2Url, "http://euca1.example:8773/services/compute/");
  assert.equal(byName["euca:cloud1"]!.user, "admin");
  // `ec2-url = use cloud1`: euca2ools signs with the name of the section the URL was found in.
  assert.equal(byName["euca:cloud2"]!.region, "cloud1");
  assert.equal(byName["env-euca"]!.s3Url, EUCARC.S3_URL);
  assert.equal(byName["env-euca"]!.user, "account 123456789012");
  const text = await runCli(["clouds"], env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^euca:cloud1 +eucalyptus +http:\/\/euca1\.example:8773\/services\/compute\/, S3 /m);
  for (const output of [r.stdout, text.stdout]) {
    for (const secret of [
      "eucarc-secret-value",
      "admin-secret",
      "other-secret",
      "aws-secret",
      "AKIADMIN",
      "AKIEUCARCKEY",
    ]) {
      assert.ok(!output.includes(secret), `${secret} is not printed`);
    }
  }
  // A listed name is one the workflows take: its EC2 endpoint is asked (here a host that does not exist).
  const list = await runCli(["image", "list", "--cloud", "euca:cloud1"], env);
  assert.notEqual(list.code, 0, list.stderr);
  assert.match(
    list.stderr,
    /EC2 at http:\/\/euca1\.example:8773\/services\/compute\/ could not be reached for DescribeImages/,
  );
  for (const secret of ["admin-secret", "AKIADMIN"]) assert.ok(!list.stderr.includes(secret), `${secret} printed`);
});
