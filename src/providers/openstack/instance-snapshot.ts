/**
 * An image from a server: Nova's createImage, then a wait for Glance's `active` with a limit scaled to the
 * server's disk size (a fixed short wait is what makes other tools give up on large servers), then a check
 * that the image has data and a hash. Volume-backed servers are refused clearly: their "snapshot" is a
 * zero-byte image pointing at Cinder snapshots, not bytes (turning those into an image is later work).
 */
import type { GlanceClient } from "./glance-client.js";
import type { GlanceImage } from "./glance-image.js";
import { isVolumeBacked, NovaClient, SNAPSHOTTABLE_STATES } from "./nova-client.js";
import { OpenStackError, WaitError } from "./errors.js";

export interface InstanceSnapshotRequest {
  readonly server: string;
  readonly imageName: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Default: 5 minutes plus 2 minutes per GiB of the flavor's root disk. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export function snapshotTimeoutMs(diskGiB: number): number {
  return 5 * 60_000 + 2 * 60_000 * Math.max(1, diskGiB);
}

export async function snapshotInstance(
  nova: NovaClient,
  glance: GlanceClient,
  req: InstanceSnapshotRequest,
): Promise<GlanceImage> {
  const call = `snapshot of server "${req.server}"`;
  const server = await nova.findServer(req.server);
  if (!server) throw new OpenStackError({ cloud: nova.cloud, call }, "no such server (by id or name)");
  if (isVolumeBacked(server)) {
    throw new OpenStackError(
      { cloud: nova.cloud, call },
      `server ${server.id} boots from a volume: Nova would make a zero-byte image that only references ` +
        "Cinder snapshots, not a disk image (volume-backed snapshots are not supported yet)",
    );
  }
  if (!SNAPSHOTTABLE_STATES.has(server.status)) {
    throw new OpenStackError(
      { cloud: nova.cloud, call },
      `server is ${server.status}; Nova snapshots only ${[...SNAPSHOTTABLE_STATES].join(", ")}`,
    );
  }
  const flavor = await nova.getFlavor(server.flavor.id);
  const timeoutMs = req.timeoutMs ?? snapshotTimeoutMs(flavor.disk);
  const imageId = await nova.createImage(server.id, req.imageName, req.metadata);
  let image: GlanceImage;
  try {
    image = await glance.waitForImageStatus(imageId, "active", { timeoutMs, signal: req.signal });
  } catch (e) {
    // A snapshot that will never finish is removed; one still saving is left for Nova to finish or kill.
    if (e instanceof WaitError && /image is (killed|deleted)/.test(e.message))
      await glance.deleteImage(imageId, { ignoreMissing: true });
    throw e;
  }
  if (!image.size) throw new OpenStackError({ cloud: nova.cloud, call }, `image ${imageId} is active but has no data`);
  if (!image.os_hash_value && !image.checksum)
    throw new OpenStackError({ cloud: nova.cloud, call }, `image ${imageId} has no recorded hash`);
  return image;
}
