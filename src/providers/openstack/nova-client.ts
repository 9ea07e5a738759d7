/**
 * Nova, as much as image work needs: find a server by id or name, its flavor, and `createImage` at
 * microversion 2.45 (the new image's id comes in the body instead of a Location header).
 */
import { z } from "zod";
import type { KeystoneSession } from "./keystone-session.js";
import { ServiceClient } from "./service-client.js";
import { OpenStackError } from "./errors.js";

export const COMPUTE_MICROVERSION = "2.45";

const ServerSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.string(),
    tenant_id: z.string().optional(),
    // A server booted from a volume has "" here instead of {id: …}.
    image: z.union([z.object({ id: z.string() }).loose(), z.literal("")]),
    flavor: z.object({ id: z.string() }).loose(),
    "os-extended-volumes:volumes_attached": z.array(z.object({ id: z.string() }).loose()).optional(),
  })
  .loose();

export type NovaServer = z.infer<typeof ServerSchema>;

const FlavorSchema = z.object({ id: z.string(), name: z.string(), disk: z.number(), ram: z.number() }).loose();
export type NovaFlavor = z.infer<typeof FlavorSchema>;

/** Server states from which Nova accepts createImage. */
export const SNAPSHOTTABLE_STATES = new Set(["ACTIVE", "SHUTOFF", "SUSPENDED", "PAUSED"]);

export class NovaClient {
  readonly service: ServiceClient;

  constructor(session: KeystoneSession) {
    this.service = new ServiceClient(session, "compute", {
      label: "nova",
      headers: { "openstack-api-version": `compute ${COMPUTE_MICROVERSION}` },
    });
  }

  get cloud(): string {
    return this.service.session.cloud;
  }

  async getServer(id: string): Promise<NovaServer> {
    const body = (await this.service.json({
      method: "GET",
      path: `/v2.1/servers/${encodeURIComponent(id)}`,
      callName: "GET /servers/{id}",
      expect: [200],
    })) as { server: unknown };
    return ServerSchema.parse(body.server);
  }

  /** By id, else by exact name (Nova's name filter is a regex, so it is anchored and escaped). */
  async findServer(idOrName: string): Promise<NovaServer | undefined> {
    try {
      return await this.getServer(idOrName);
    } catch (e) {
      if (!(e instanceof OpenStackError && e.status === 404)) throw e;
    }
    const body = (await this.service.json({
      method: "GET",
      path: "/v2.1/servers/detail",
      query: { name: `^${idOrName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$` },
      callName: "GET /servers/detail?name",
      expect: [200],
    })) as { servers: unknown[] };
    const servers = body.servers.map((s) => ServerSchema.parse(s));
    if (servers.length > 1) {
      throw new OpenStackError(
        { cloud: this.cloud, call: "nova find server by name" },
        `${servers.length} servers are named "${idOrName}" (${servers.map((s) => s.id).join(", ")}): use an id`,
      );
    }
    return servers[0];
  }

  async getFlavor(id: string): Promise<NovaFlavor> {
    const body = (await this.service.json({
      method: "GET",
      path: `/v2.1/flavors/${encodeURIComponent(id)}`,
      callName: "GET /flavors/{id}",
      expect: [200],
    })) as { flavor: unknown };
    return FlavorSchema.parse(body.flavor);
  }

  /** Starts a snapshot; returns the new Glance image's id (which is `queued` / `saving` for a while). */
  async createImage(serverId: string, name: string, metadata: Readonly<Record<string, string>> = {}): Promise<string> {
    const body = (await this.service.json({
      method: "POST",
      path: `/v2.1/servers/${encodeURIComponent(serverId)}/action`,
      callName: "POST /servers/{id}/action createImage",
      json: { createImage: { name, metadata } },
      expect: [202],
    })) as { image_id?: unknown };
    if (typeof body?.image_id !== "string") {
      throw new OpenStackError(
        { cloud: this.cloud, call: "nova POST /servers/{id}/action createImage", status: 202 },
        `no image_id in the reply (does the cloud support compute microversion ${COMPUTE_MICROVERSION}?)`,
      );
    }
    return body.image_id;
  }
}

export function isVolumeBacked(server: NovaServer): boolean {
  return server.image === "";
}
