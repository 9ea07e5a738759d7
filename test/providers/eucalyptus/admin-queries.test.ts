/**
 * The Eucalyptus admin Query calls (DescribeServices, DescribeNodes, verbose DescribeInstances and the
 * instance → node controller lookup built on them) against test/helpers/eucalyptus-admin-server.ts, a server
 * written from Eucalyptus 4.4's message definitions and admin tools (see its header), which checks every
 * signature. Also the client's limits on what a reply may be: no DTD, no unbounded body.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { eucalyptusAdminEndpoints } from "../../../src/providers/eucalyptus/admin-services.js";
import { describeServices } from "../../../src/providers/eucalyptus/describe-services.js";
import { describeNodes } from "../../../src/providers/eucalyptus/describe-nodes.js";
import { describeAllInstances } from "../../../src/providers/eucalyptus/verbose-instances.js";
import { findInstanceNode } from "../../../src/providers/eucalyptus/instance-node.js";
import { EucalyptusError } from "../../../src/providers/eucalyptus/eucalyptus-error.js";
import { queryCall } from "../../../src/providers/eucalyptus/query-client.js";
import {
  startEucalyptusAdminServer,
  type AdminServer,
  type ModelInstance,
  type ServerKey,
} from "../../helpers/eucalyptus-admin-server.js";

const ADMIN: ServerKey = {
  accessKeyId: "AKIEUCAADMIN0000",
  secretAccessKey: "admin-secret-XYZ",
  account: "000000000001",
  admin: true,
};
const ALICE: ServerKey = {
  accessKeyId: "AKIALICE00000000",
  secretAccessKey: "alice-secret-123",
  account: "123456789012",
  admin: false,
};
const BOB: ServerKey = {
  accessKeyId: "AKIBOB0000000000",
  secretAccessKey: "bob-secret-4567",
  account: "210987654321",
  admin: false,
};

const INSTANCES: ModelInstance[] = [
  {
    instanceId: "i-0a1b2c3d",
    account: ALICE.account,
    reservationId: "r-1111aaaa",
    imageId: "emi-11111111",
    kernelId: "eki-22222222",
    ramdiskId: "eri-33333333",
    rootDeviceType: "instance-store",
    state: "running",
    nodeTag: "10.111.5.21",
    node: "10.111.5.21",
  },
  {
    instanceId: "i-4e5f6a7b",
    account: BOB.account,
    reservationId: "r-2222bbbb",
    imageId: "emi-44444444",
    rootDeviceType: "ebs",
    state: "running",
    nodeTag: "10.111.5.22",
    node: "10.111.5.22",
  },
  {
    instanceId: "i-8c9d0e1f",
    account: BOB.account,
    reservationId: "r-2222bbbb",
    imageId: "emi-44444444",
    rootDeviceType: "instance-store",
    state: "running",
    node: "10.111.5.22",
  },
];

let server: AdminServer;
let legacy: AdminServer;
before(async () => {
  server = await startEucalyptusAdminServer({ keys: [ADMIN, ALICE, BOB], instances: INSTANCES });
  legacy = await startEucalyptusAdminServer({ keys: [ADMIN, ALICE, BOB], instances: INSTANCES, describeNodes: true });
});
after(async () => {
  await server.close();
  await legacy.close();
});

test("DescribeServices lists the node controllers with their hosts, signed for the bootstrap service", async () => {
  const endpoints = eucalyptusAdminEndpoints(server.url);
  const nodes = await describeServices(endpoints, ADMIN, { serviceType: "node" });
  assert.deepEqual(
    nodes.map((n) => [n.type, n.name, n.host, n.partition, n.state]),
    [
      ["node", "10.111.5.21", "10.111.5.21", "one", "ENABLED"],
      ["node", "10.111.5.22", "10.111.5.22", "one", "ENABLED"],
    ],
  );
  assert.match(nodes[0]!.uris[0]!, /^http:\/\/10\.111\.5\.21:8775\//);
  const last = server.log.at(-1)!;
  assert.deepEqual(
    [last.path, last.action, last.accepted, last.signingService],
    ["/services/Empyrean", "DescribeServices", true, "bootstrap"],
  );
  // Without ListAll the internal services (clusters, nodes) are left out, as Eucalyptus does.
  const publicOnly = await describeServices(endpoints, ADMIN, { listAll: false });
  assert.ok(publicOnly.length > 0 && publicOnly.every((s) => s.type !== "node" && s.type !== "cluster"));
});

test("a wrong secret key is refused by the server with AuthFailure, as an EAUTH error naming the call", async () => {
  const endpoints = eucalyptusAdminEndpoints(server.url);
  await assert.rejects(
    describeServices(endpoints, { ...ADMIN, secretAccessKey: "not-the-secret" }),
    (error: unknown) => {
      assert.ok(error instanceof EucalyptusError);
      assert.equal(error.code, "EAUTH");
      assert.equal(error.cloudCode, "AuthFailure");
      assert.equal(error.status, 403);
      assert.match(
        error.message,
        /^Eucalyptus bootstrap \(Empyrean\) DescribeServices at http:\/\/127\.0\.0\.1:\d+\/services\/Empyrean → HTTP 403 AuthFailure: .*signature/,
      );
      assert.doesNotMatch(error.message, /not-the-secret|admin-secret/);
      return true;
    },
  );
  assert.equal(server.log.at(-1)!.accepted, false);
  await assert.rejects(describeServices(endpoints, { ...ADMIN, accessKeyId: "AKIUNKNOWN000000" }), /AuthFailure/);
});

test("a user who is not an administrator is refused DescribeServices", async () => {
  await assert.rejects(describeServices(eucalyptusAdminEndpoints(server.url), ALICE), (error: unknown) => {
    assert.ok(error instanceof EucalyptusError);
    assert.equal(error.cloudCode, "AccessDenied");
    assert.equal(error.code, "EAUTH");
    return true;
  });
});

test("verbose DescribeInstances shows every account's instances to an administrator, only one's own to a user", async () => {
  const endpoints = eucalyptusAdminEndpoints(server.url);
  const all = await describeAllInstances(endpoints, ADMIN);
  assert.deepEqual(all.map((i) => [i.instanceId, i.account, i.rootDeviceType, i.state, i.node]).sort(), [
    ["i-0a1b2c3d", ALICE.account, "instance-store", "running", "10.111.5.21"],
    ["i-4e5f6a7b", BOB.account, "ebs", "running", "10.111.5.22"],
    ["i-8c9d0e1f", BOB.account, "instance-store", "running", undefined],
  ]);
  const alice = all.find((i) => i.instanceId === "i-0a1b2c3d")!;
  assert.deepEqual(
    [alice.kernelId, alice.ramdiskId, alice.imageId, alice.availabilityZone],
    ["eki-22222222", "eri-33333333", "emi-11111111", "one"],
  );
  assert.equal(server.log.at(-1)!.signingService, "ec2");
  const own = await describeAllInstances(endpoints, ALICE);
  assert.deepEqual(
    own.map((i) => i.instanceId),
    ["i-0a1b2c3d"],
  );
});

test("findInstanceNode maps an instance to its node controller's host and owning account", async () => {
  const endpoints = eucalyptusAdminEndpoints(server.url);
  assert.deepEqual(await findInstanceNode(endpoints, ADMIN, "i-0a1b2c3d"), {
    instanceId: "i-0a1b2c3d",
    nodeHost: "10.111.5.21",
    account: ALICE.account,
    rootDeviceType: "instance-store",
    state: "running",
    availabilityZone: "one",
    imageId: "emi-11111111",
    kernelId: "eki-22222222",
    ramdiskId: "eri-33333333",
    foundBy: "euca:node tag",
  });
});

test("a missing instance is a clear error carrying the cloud's InvalidInstanceID.NotFound", async () => {
  await assert.rejects(
    findInstanceNode(eucalyptusAdminEndpoints(server.url), ADMIN, "i-deadbeef"),
    (error: unknown) => {
      assert.ok(error instanceof EucalyptusError);
      assert.equal(error.cloudCode, "InvalidInstanceID.NotFound");
      assert.equal(error.code, "ECLOUD");
      assert.match(
        error.message,
        /compute DescribeInstances .* InvalidInstanceID\.NotFound: The instance ID 'i-deadbeef' does not exist/,
      );
      return true;
    },
  );
});

test("an untagged instance: DescribeNodes on a 3.x cloud finds its node, a 4.4 cloud refuses the unknown action", async () => {
  const found = await findInstanceNode(eucalyptusAdminEndpoints(legacy.url), ADMIN, "i-8c9d0e1f");
  assert.deepEqual([found.nodeHost, found.account, found.foundBy], ["10.111.5.22", BOB.account, "DescribeNodes"]);
  const registered = await describeNodes(eucalyptusAdminEndpoints(legacy.url), ADMIN);
  assert.deepEqual(
    registered.map((n) => [n.name, n.clusterName, n.instances]),
    [
      ["10.111.5.21", "one-cc", ["i-0a1b2c3d"]],
      ["10.111.5.22", "one-cc", ["i-4e5f6a7b", "i-8c9d0e1f"]],
    ],
  );
  await assert.rejects(
    findInstanceNode(eucalyptusAdminEndpoints(server.url), ADMIN, "i-8c9d0e1f"),
    (error: unknown) => {
      assert.equal((error as { code?: string }).code, "ECLOUD");
      assert.match(
        String(error),
        /i-8c9d0e1f \(running\) has no euca:node tag, and DescribeNodes could not be asked instead: .*HTTP 400 InvalidAction: Failed to find corresponding class mapping for element: DescribeNodes/,
      );
      return true;
    },
  );
});

/** A server answering every request with `body` (and a declared length, or none). */
async function replyingWith(body: string | Buffer, t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const s = createServer((_req, res) => {
    _req.resume();
    res.writeHead(200, { "content-type": "text/xml" });
    res.end(body);
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/services/Empyrean`;
}

const SERVICE = (url: string) => ({
  url,
  signingName: "bootstrap",
  label: "bootstrap (Empyrean)",
  apiVersion: "eucalyptus",
});

test("a reply with a DTD is refused before any entity could be expanded", async (t) => {
  const url = await replyingWith(
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><DescribeServicesResponseType>&b;</DescribeServicesResponseType>',
    t,
  );
  await assert.rejects(
    queryCall(SERVICE(url), ADMIN, "DescribeServices", {}),
    /DescribeServices at .*: unreadable reply: it has a DTD, which is refused/,
  );
});

test("a reply over the size limit is cut off and refused", async (t) => {
  const url = await replyingWith(Buffer.alloc(3 * 1024 * 1024, "a"), t);
  await assert.rejects(
    queryCall(SERVICE(url), ADMIN, "DescribeServices", {}, { maxResponseBytes: 1024 * 1024 }),
    /DescribeServices at .*: the call failed: the reply is over the 1048576-byte limit/,
  );
});

test("an endpoint nobody listens on is a clear connection failure", async () => {
  const endpoints = eucalyptusAdminEndpoints("http://127.0.0.1:9");
  await assert.rejects(describeServices(endpoints, ADMIN, {}, { timeoutMs: 5000 }), (error: unknown) => {
    assert.ok(error instanceof EucalyptusError);
    assert.match(error.message, /DescribeServices at http:\/\/127\.0\.0\.1:9\/services\/Empyrean: the call failed: /);
    return true;
  });
});
