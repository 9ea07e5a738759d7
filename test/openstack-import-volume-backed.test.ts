/**
 * Volume-backed servers: Nova's createImage on them makes a zero-byte image that only references Cinder
 * snapshots, so the client refuses them before asking. Two proofs:
 *
 * 1. Against the real stack: the server "vol-backed" that `aio.sh start cinder` boots from a Cinder volume
 *    (Cinder with its fake backend, since no LVM or NFS works here; Nova's fake compute host) — a real Nova
 *    record, checked live.
 * 2. Against a RECORDED reply: the `GET /v2.1/servers/{id}` body below was recorded from that same server
 *    (Nova 26.x = Zed, microversion 2.45, 2026-11-26) and is replayed by a local HTTP server standing in for
 *    Nova (Keystone stays real), so the parsing and the refusal are checked even where Cinder is absent.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import { KeystoneSession } from "../src/providers/openstack/keystone-session.js";
import { GlanceClient } from "../src/providers/openstack/glance-client.js";
import { NovaClient, isVolumeBacked } from "../src/providers/openstack/nova-client.js";
import { snapshotInstance } from "../src/providers/openstack/instance-snapshot.js";
import { requireStack, stackCloud } from "./helpers/openstack-stack.js";

before(requireStack);

const REFUSAL =
  /cloud "envvars": snapshot of server "vol-backed": server [0-9a-f-]{36} boots from a volume: Nova would make a zero-byte image/;

test("the live volume-backed server is detected and refused before any snapshot is asked for", async () => {
  const cloud = stackCloud("admin");
  const nova = new NovaClient(new KeystoneSession(cloud));
  const glance = new GlanceClient(new KeystoneSession(cloud));
  const server = await nova.findServer("vol-backed");
  assert.ok(
    server,
    'no server "vol-backed" in the admin project: start it with `bash test/infra/openstack/aio.sh start cinder`',
  );
  assert.equal(server.image, "", "Nova reports no image for a server booted from a volume");
  assert.ok((server["os-extended-volumes:volumes_attached"] ?? []).length >= 1, "its root volume is attached");
  assert.equal(isVolumeBacked(server), true);

  const imageName = `chromo-test-volsnap-${randomUUID().slice(0, 8)}`;
  await assert.rejects(snapshotInstance(nova, glance, { server: "vol-backed", imageName }), REFUSAL);
  assert.equal(await glance.findImage(imageName), undefined, "no image was created");
});

/** Recorded from the test stack's Nova (see the header); nothing in it was edited. */
const RECORDED_VOLUME_BACKED_SERVER = {
  server: {
    id: "f16be119-32b2-41b8-8ffb-69e76600e843",
    name: "vol-backed",
    status: "ACTIVE",
    tenant_id: "63626b7f60e545689de3c54b6b637bea",
    user_id: "8f54a8d1d20e4df88d39b4ad0df6357e",
    metadata: {},
    hostId: "e69a932d3bdc5950a0bd7738e5d0599db0fb69560596fe5a662a156a",
    image: "",
    flavor: {
      id: "7019cc1e-1c82-4003-8fca-24a96dfb14af",
      links: [{ rel: "bookmark", href: "http://127.0.0.1:8774/flavors/7019cc1e-1c82-4003-8fca-24a96dfb14af" }],
    },
    created: "2026-11-26T08:20:42Z",
    updated: "2026-11-26T08:20:46Z",
    addresses: {},
    accessIPv4: "",
    accessIPv6: "",
    links: [
      { rel: "self", href: "http://127.0.0.1:8774/v2.1/servers/f16be119-32b2-41b8-8ffb-69e76600e843" },
      { rel: "bookmark", href: "http://127.0.0.1:8774/servers/f16be119-32b2-41b8-8ffb-69e76600e843" },
    ],
    "OS-DCF:diskConfig": "MANUAL",
    progress: 0,
    "OS-EXT-AZ:availability_zone": "nova",
    config_drive: "",
    key_name: null,
    "OS-SRV-USG:launched_at": "2026-11-26T08:20:46.000000",
    "OS-SRV-USG:terminated_at": null,
    "OS-EXT-SRV-ATTR:host": "aio-fake",
    "OS-EXT-SRV-ATTR:instance_name": "instance-00000004",
    "OS-EXT-SRV-ATTR:hypervisor_hostname": "aio-fake",
    "OS-EXT-SRV-ATTR:reservation_id": "r-knt2js19",
    "OS-EXT-SRV-ATTR:launch_index": 0,
    "OS-EXT-SRV-ATTR:hostname": "vol-backed",
    "OS-EXT-SRV-ATTR:kernel_id": "",
    "OS-EXT-SRV-ATTR:ramdisk_id": "",
    "OS-EXT-SRV-ATTR:root_device_name": "/dev/sda",
    "OS-EXT-SRV-ATTR:user_data": null,
    "OS-EXT-STS:task_state": null,
    "OS-EXT-STS:vm_state": "active",
    "OS-EXT-STS:power_state": 1,
    "os-extended-volumes:volumes_attached": [
      { id: "e2dd3b9e-9ab9-46f3-93d5-4eb8a26c3d77", delete_on_termination: false },
    ],
    host_status: "MAINTENANCE",
    locked: false,
    description: null,
    tags: [],
  },
};

test("RECORDED Nova reply: a volume-backed server is parsed, detected and refused; no createImage is sent", async (t) => {
  const seen: string[] = [];
  const id = RECORDED_VOLUME_BACKED_SERVER.server.id;
  const replay = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers["openstack-api-version"] ?? ""}`);
    if (req.method === "GET" && req.url === `/v2.1/servers/${id}`) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(RECORDED_VOLUME_BACKED_SERVER));
    } else {
      res.writeHead(500, { "content-type": "application/json" }).end('{"computeFault": {"message": "not recorded"}}');
    }
  });
  await new Promise<void>((resolve) => replay.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => replay.close(() => resolve())));
  const port = (replay.address() as { port: number }).port;

  const cloud = stackCloud("admin", "RegionOne", { OS_COMPUTE_ENDPOINT_OVERRIDE: `http://127.0.0.1:${port}` });
  assert.equal(cloud.endpointOverrides.compute, `http://127.0.0.1:${port}`, "Nova calls go to the replay");
  const nova = new NovaClient(new KeystoneSession(cloud));
  const glance = new GlanceClient(new KeystoneSession(stackCloud("admin")));

  const server = await nova.getServer(id);
  assert.equal(isVolumeBacked(server), true);
  await assert.rejects(
    snapshotInstance(nova, glance, { server: id, imageName: "never-made" }),
    new RegExp(
      `server ${id} boots from a volume: Nova would make a zero-byte image that only references Cinder snapshots`,
    ),
  );
  assert.deepEqual(
    seen,
    [`GET /v2.1/servers/${id} compute 2.45`, `GET /v2.1/servers/${id} compute 2.45`],
    "only the server was read (microversion 2.45); createImage was never sent",
  );
});
