/**
 * Servers on the test stack: the tiny ones its suites snapshot (image "tinyos", flavor m1.tiny, no network,
 * all made by `aio.sh start all`), booted until ACTIVE and deleted until gone.
 */
import { sleep } from "../../src/providers/openstack/keystone-session.js";
import type { NovaClient } from "../../src/providers/openstack/nova-client.js";
import type { OpenStackProvider } from "../../src/providers/openstack/openstack-provider.js";

/** Boots a tinyos server named `name` as `provider`'s user and waits until it is ACTIVE; returns its id. */
export async function bootTinyServer(provider: OpenStackProvider, name: string): Promise<string> {
  const nova = provider.nova;
  // flavorRef takes an id; the stack names its flavor m1.tiny.
  const flavors = (await nova.service.json({ method: "GET", path: "/v2.1/flavors", expect: [200] })) as {
    flavors: { id: string; name: string }[];
  };
  const tiny = flavors.flavors.find((f) => f.name === "m1.tiny");
  if (!tiny) throw new Error("flavor m1.tiny missing: start the stack with `aio.sh start all`");
  const image = await provider.getImage("tinyos");
  if (!image) throw new Error('image "tinyos" missing: start the stack with `aio.sh start all`');
  const body = (await nova.service.json({
    method: "POST",
    path: "/v2.1/servers",
    json: { server: { name, imageRef: image.id, flavorRef: tiny.id, networks: "none" } },
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

/** Deletes server `id` and waits (up to a minute) until Nova no longer lists it. */
export async function deleteServer(nova: NovaClient, id: string): Promise<void> {
  await nova.service.send({ method: "DELETE", path: `/v2.1/servers/${id}`, expect: [204, 404] });
  for (let i = 0; i < 60; i++) {
    if (!(await nova.findServer(id))) return;
    await sleep(1000);
  }
}
