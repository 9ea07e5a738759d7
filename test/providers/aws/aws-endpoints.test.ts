/**
 * Where requests to AWS go: the endpoint overrides AWS users set (AWS_ENDPOINT_URL[_SERVICE], a profile's
 * services section and endpoint_url, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), FIPS and dual-stack, and the
 * partitions (GovCloud us-gov-*, China cn-* on .amazonaws.com.cn). Each case asserts the URL the SDK client
 * built by Ec2Connection.forAws / S3Connection.forAws actually sends the request to (stopped before it leaves),
 * and one case sends it for real to a local server named by an override. Rules from the AWS SDKs and Tools
 * Reference Guide ("Service-specific endpoints", "Dual-stack and FIPS endpoints").
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { DescribeRegionsCommand } from "@aws-sdk/client-ec2";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { awsHome } from "../../helpers/aws/aws-home.js";
import { FakeAwsAccount } from "../../helpers/aws/fake-aws-account.js";
import { Ec2RegionsServer } from "../../helpers/aws/ec2-regions-server.js";
import { scratch } from "../../helpers/tools.js";
import { loadAwsCloudConfig } from "../../../src/providers/aws/aws-cloud-config.js";
import { partitionOf, resolveAwsEndpoints } from "../../../src/providers/aws/aws-endpoints.js";
import { Ec2Connection } from "../../../src/providers/ec2/ec2-connection.js";
import { S3Connection } from "../../../src/providers/ec2/s3-connection.js";

const KEYS = { AWS_ACCESS_KEY_ID: "AKIAENDPOINTTEST", AWS_SECRET_ACCESS_KEY: "endpoint-test-secret" };

/** The URL a client sends its next request to; the request is stopped before it is sent. */
function captureUrl(stack: { add: (m: never, o: { step: "build"; name: string }) => void }): () => string {
  let url = "";
  const capture = (_next: unknown) => async (args: { request: Record<string, unknown> }) => {
    const r = args.request;
    url = `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ""}${r.path}`;
    throw new Error("captured");
  };
  stack.add(capture as never, { step: "build", name: "testCaptureUrl" });
  return () => url;
}

async function ec2Url(t: TestContext, env: Record<string, string>, name = "aws"): Promise<string> {
  const connection = Ec2Connection.forAws(loadAwsCloudConfig(name, env));
  t.after(() => connection.destroy());
  const url = captureUrl(connection.client.middlewareStack as never);
  await assert.rejects(connection.client.send(new DescribeRegionsCommand({})), /captured/);
  // The URL messages name is the one requests go to.
  assert.equal(connection.endpoint, url().replace(/\/$/, ""));
  return url();
}

async function s3Url(t: TestContext, env: Record<string, string>, name = "aws"): Promise<string> {
  const connection = S3Connection.forAws(loadAwsCloudConfig(name, env));
  t.after(() => connection.destroy());
  const url = captureUrl(connection.client.middlewareStack as never);
  await assert.rejects(connection.client.send(new GetObjectCommand({ Bucket: "my-bucket", Key: "k" })), /captured/);
  return url();
}

test("regions of each partition land on their hosts; FIPS and dual-stack variants", async (t) => {
  const home = await awsHome(await scratch(t), {});
  const env = (region: string, extra: Record<string, string> = {}) => ({
    ...home.env,
    ...KEYS,
    ...extra,
    AWS_REGION: region,
  });
  const cases: [string, Record<string, string>, string, string][] = [
    ["us-east-1", {}, "https://ec2.us-east-1.amazonaws.com/", "https://my-bucket.s3.us-east-1.amazonaws.com/k"],
    [
      "us-gov-west-1",
      {},
      "https://ec2.us-gov-west-1.amazonaws.com/",
      "https://my-bucket.s3.us-gov-west-1.amazonaws.com/k",
    ],
    [
      "cn-north-1",
      {},
      "https://ec2.cn-north-1.amazonaws.com.cn/",
      "https://my-bucket.s3.cn-north-1.amazonaws.com.cn/k",
    ],
    [
      "us-east-1",
      { AWS_USE_FIPS_ENDPOINT: "true" },
      "https://ec2-fips.us-east-1.amazonaws.com/",
      "https://my-bucket.s3-fips.us-east-1.amazonaws.com/k",
    ],
    [
      "us-east-1",
      { AWS_USE_DUALSTACK_ENDPOINT: "true" },
      "https://ec2.us-east-1.api.aws/",
      "https://my-bucket.s3.dualstack.us-east-1.amazonaws.com/k",
    ],
  ];
  for (const [region, extra, ec2, s3] of cases) {
    assert.equal(await ec2Url(t, env(region, extra)), ec2, `EC2 in ${region} ${JSON.stringify(extra)}`);
    assert.equal(await s3Url(t, env(region, extra)), s3, `S3 in ${region} ${JSON.stringify(extra)}`);
  }
  assert.deepEqual(["us-east-1", "us-gov-west-1", "cn-northwest-1", "us-iso-east-1"].map(partitionOf), [
    "aws",
    "aws-us-gov",
    "aws-cn",
    "aws-iso",
  ]);
  const gov = loadAwsCloudConfig("aws/us-gov-east-1", env("eu-west-1"));
  assert.deepEqual([gov.region, gov.partition], ["us-gov-east-1", "aws-us-gov"], "the name's region wins");
});

test("a profile's use_fips_endpoint, services section and addressing style are applied to that profile", async (t) => {
  const home = await awsHome(await scratch(t), {
    config:
      "[profile gov]\nregion = us-gov-west-1\nuse_fips_endpoint = true\n\n" +
      "[profile vpc]\nregion = us-east-1\nservices = private\n\n" +
      "[services private]\nec2 =\n  endpoint_url = https://vpce-0a1b2c3d-4e5f6a7b.ec2.us-east-1.vpce.amazonaws.com\n" +
      "s3 =\n  endpoint_url = https://vpce-0a1b2c3d-4e5f6a7b.s3.us-east-1.vpce.amazonaws.com\n\n" +
      "[profile paths]\nregion = us-east-1\ns3 =\n  addressing_style = path\n",
    credentials:
      "[gov]\naws_access_key_id = AKIAGOV\naws_secret_access_key = gov-secret\n" +
      "[vpc]\naws_access_key_id = AKIAVPC\naws_secret_access_key = vpc-secret\n" +
      "[paths]\naws_access_key_id = AKIAPATHS\naws_secret_access_key = paths-secret\n",
  });
  assert.equal(await s3Url(t, home.env, "aws:gov"), "https://my-bucket.s3-fips.us-gov-west-1.amazonaws.com/k");
  // A VPC interface endpoint is an explicit URL; S3 stays virtual-hosted on its wildcard name.
  assert.equal(
    await ec2Url(t, home.env, "aws:vpc"),
    "https://vpce-0a1b2c3d-4e5f6a7b.ec2.us-east-1.vpce.amazonaws.com/",
  );
  assert.equal(
    await s3Url(t, home.env, "aws:vpc"),
    "https://my-bucket.vpce-0a1b2c3d-4e5f6a7b.s3.us-east-1.vpce.amazonaws.com/k",
  );
  assert.equal(await s3Url(t, home.env, "aws:paths"), "https://s3.us-east-1.amazonaws.com/my-bucket/k");
  // An S3-compatible server named by an override is addressed path-style.
  assert.equal(
    await s3Url(t, { ...home.env, AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000" }, "aws:vpc"),
    "http://127.0.0.1:9000/my-bucket/k",
  );
});

test("override precedence: service variable, global variable, services section, profile endpoint_url", () => {
  const profile = new Map([
    ["endpoint_url", "https://profile.example"],
    ["services", "s"],
  ]);
  const services = new Map([["ec2.endpoint_url", "https://services-ec2.example"]]);
  const at = (env: Record<string, string>) => resolveAwsEndpoints(env, profile, services, "test").endpoints;
  assert.deepEqual(at({}), {
    ec2: "https://services-ec2.example",
    s3: "https://profile.example",
    ebs: "https://profile.example",
    sts: "https://profile.example",
    sso: "https://profile.example",
  });
  assert.equal(at({ AWS_ENDPOINT_URL: "https://global.example" }).ec2, "https://global.example");
  assert.equal(
    at({ AWS_ENDPOINT_URL: "https://global.example", AWS_ENDPOINT_URL_EC2: "https://ec2.example" }).ec2,
    "https://ec2.example",
  );
  assert.deepEqual(at({ AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true", AWS_ENDPOINT_URL: "https://x.example" }), {});
  assert.throws(
    () => at({ AWS_ENDPOINT_URL_EBS: "ebs.example" }),
    /test: AWS_ENDPOINT_URL_EBS "ebs\.example" is not an http\(s\) URL/,
  );
  assert.throws(
    () => resolveAwsEndpoints({ AWS_USE_FIPS_ENDPOINT: "yes" }, undefined, undefined, "test"),
    /must be true or false/,
  );
});

test("an endpoint override is where the signed request really goes", async (t) => {
  const account = new FakeAwsAccount({ region: "us-gov-west-1" });
  const ec2 = await Ec2RegionsServer.start(account);
  t.after(() => ec2.close());
  const key = account.addCredential();
  const home = await awsHome(await scratch(t), {
    config: `[profile local]\nregion = us-gov-west-1\nendpoint_url = ${ec2.url}\n`,
    credentials: `[local]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n`,
  });
  const connection = Ec2Connection.forAws(loadAwsCloudConfig("aws:local", home.env));
  t.after(() => connection.destroy());
  await connection.send(new DescribeRegionsCommand({}), { call: "DescribeRegions" });
  assert.deepEqual(ec2.acceptedKeys, [key.accessKeyId]);
  assert.equal(ec2.requests[0]!.host, new URL(ec2.url).host);
});
