/**
 * Nova snapshot through the provider against the real test stack (`aio.sh start all`: Nova with libvirt/qemu
 * TCG): boot the public tiny image as user-a, snapshot it, wait, download and verify it, then upload it as
 * user-b into RegionTwo.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { OpenStackProvider } from "../src/providers/openstack/openstack-provider.js";
import { NovaClient } from "../src/providers/openstack/nova-client.js";
import { OpenStackError } from "../src/providers/openstack/errors.js";
import { sleep } from "../src/providers/openstack/keystone-session.js";
import { requireStack, stackCloud } from "./helpers/openstack-stack.js";
import { qemuInfo, scratch } from "./helpers/tools.js";

before(requireStack);

async function findPublicImageId(nova: NovaClient, name: string): Promise<string> {
  const provider = new OpenStackProvider(nova.service.session.config);
  const image = await provider.getImage(name);
  if (!image) throw new Error(`image "${name}" missing: start the stack with \`aio.sh start all\``);
  return image.id;
}

async function deleteServer(nova: NovaClient, id: string): Promise<void> {
  await nova.service.send({ method: "DELETE", path: `/v2.1/servers/${id}`, expect: [204, 404] });
  for (let i = 0; i < 60; i++) {
    if (!(await nova.findServer(id))) return;
    await sleep(1000);
  }
}

test(
  "snapshot a running server, download it verified, upload it as user B into RegionTwo",
  { timeout: 10 * 60_000 },
  async (t) => {
    const dir = await scratch(t);
    const providerA = new OpenStackProvider(stackCloud("user-a"));
    const name = `chromo-test-vm-${randomUUID().slice(0, 8)}`;
    // flavorRef takes an id; the stack names its flavor m1.tiny.
    const flavors = (await providerA.nova.service.json({ method: "GET", path: "/v2.1/flavors", expect: [200] })) as {
      flavors: { id: string; name: string }[];
    };
    const tiny = flavors.flavors.find((f) => f.name === "m1.tiny");
    assert.ok(tiny, "flavor m1.tiny exists (aio.sh start all)");
    const serverId = await bootTinyServerWithFlavor(providerA.nova, name, tiny.id);
    t.after(() => deleteServer(providerA.nova, serverId));

    const snapshot = await providerA.createImageFromInstance({ instance: name, imageName: `${name}-snap` });
    t.after(() => providerA.deleteImage(snapshot.id).catch(() => undefined));
    assert.equal(snapshot.state, "ready");
    assert.equal(snapshot.visibility, "private");
    assert.equal(snapshot.properties.image_type, "snapshot");
    assert.equal(snapshot.properties.instance_uuid, serverId);
    assert.ok(snapshot.hash && snapshot.sizeBytes);

    const file = join(dir, "snap.qcow2");
    await pipeline(providerA.downloadImage(snapshot.id), createWriteStream(file));
    const info = await qemuInfo(file);
    assert.equal(info.format, snapshot.diskFormat);
    assert.equal(info["virtual-size"], 2 ** 30);

    const providerB = new OpenStackProvider(stackCloud("user-b", "RegionTwo"));
    const copy = await providerB.uploadImage(
      { name: `${name}-copy`, diskFormat: snapshot.diskFormat!, sizeBytes: snapshot.sizeBytes },
      createReadStream(file),
    );
    t.after(() => providerB.deleteImage(copy.id).catch(() => undefined));
    assert.equal(copy.hash?.value, snapshot.hash.value);
    assert.equal(copy.visibility, "private");
  },
);

test("snapshot of a server that does not exist is a clear error", async () => {
  const provider = new OpenStackProvider(stackCloud("user-a"));
  await assert.rejects(
    provider.createImageFromInstance({ instance: "no-such-server-here", imageName: "x" }),
    (e: unknown) =>
      e instanceof OpenStackError && /snapshot of server "no-such-server-here": no such server/.test(e.message),
  );
});

async function bootTinyServerWithFlavor(nova: NovaClient, name: string, flavorId: string): Promise<string> {
  const imageRef = await findPublicImageId(nova, "tinyos");
  const body = (await nova.service.json({
    method: "POST",
    path: "/v2.1/servers",
    json: { server: { name, imageRef, flavorRef: flavorId, networks: "none" } },
    expect: [202],
  })) as { server: { id: string } };
  const id = body.server.id;
  for (let i = 0; i < 240; i++) {
    const server = await nova.getServer(id);
    if (server.status === "ACTIVE") return id;
    if (server.status === "ERROR") throw new Error(`server ${id} went to ERROR: ${JSON.stringify(server.fault)}`);
    await sleep(1000);
  }
  throw new Error(`server ${id} not ACTIVE after 240 s`);
}
