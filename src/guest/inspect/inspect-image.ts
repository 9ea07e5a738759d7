/**
 * `chromogenic inspect IMAGE` as a function: the image's guest is attached and mounted read-only (nothing can
 * write the image), described by reading its files (inspect-guest.ts), and everything attached is undone
 * before this returns, whatever happens. Needs root (loop devices, mounts).
 */
import type { ReferencePolicy } from "../../formats/types.js";
import { openGuest } from "../guest-session.js";
import { inspectGuest, type GuestInspection } from "./inspect-guest.js";

export interface InspectImageOptions {
  /** The image's format; detected from its content when absent. */
  readonly format?: string;
  readonly references?: ReferencePolicy;
  readonly signal?: AbortSignal;
}

export interface ImageInspection extends GuestInspection {
  readonly image: string;
  /** The guest's filesystems as mounted: where in the guest, and of which type. */
  readonly filesystems: readonly { readonly mountPoint: string; readonly type: string }[];
}

export async function inspectImage(image: string, options: InspectImageOptions = {}): Promise<ImageInspection> {
  const guest = await openGuest(image, { ...options, readOnly: true });
  try {
    const report = await inspectGuest(guest.mounted.root);
    const filesystems = guest.mounted.mounts.map((m) => ({ mountPoint: m.guestPath, type: m.type }));
    return { image, filesystems, ...report };
  } finally {
    await guest.close();
  }
}
