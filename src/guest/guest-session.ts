import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { ProgressListener } from "../util/events.js";
import type { ReferencePolicy } from "../formats/types.js";
import { attachImage, commitWorkingCopy, type AttachedImage } from "./attach/attach-image.js";
import { GuestJournal, stateDir } from "./journal/guest-journal.js";
import { mountGuest, type MountedGuest } from "./mount/mount-guest.js";
import { GuestAccessError } from "./guest-access-error.js";

export interface OpenGuestOptions {
  readonly readOnly: boolean;
  readonly inPlace?: boolean;
  readonly workDir?: string;
  readonly format?: string;
  readonly references?: ReferencePolicy;
  readonly signal?: AbortSignal;
}

export interface CommitOptions {
  readonly signal?: AbortSignal;
  /** Progress of the conversion back (phase "convert"). */
  readonly onProgress?: ProgressListener;
}

export interface GuestSession {
  readonly attached: AttachedImage;
  readonly mounted: MountedGuest;
  /**
   * Unmounts and detaches everything, then writes the working copy to `output` (default: over the image),
   * under a temporary name until complete: cancelling through `signal` leaves nothing under `output`.
   */
  commit(output?: string, format?: string, options?: CommitOptions): Promise<void>;
  /**
   * Unmounts every guest filesystem, keeping the block devices attached: for changes that need the
   * filesystems offline (new UUIDs). `commit` or `close` follows.
   */
  unmount(): Promise<void>;
  /** Unmounts, deactivates and detaches everything this session made, and removes the working copy. */
  close(): Promise<void>;
}

/**
 * Attaches and mounts an image's guest tree; the one entry point later layers (cleaning, conversion) use.
 * Every change goes through one journal: on any error here it is undone before the error is rethrown, and the
 * caller's `close()` (in a finally) undoes it on every other exit path, including cancellation by signal.
 */
export async function openGuest(image: string, options: OpenGuestOptions): Promise<GuestSession> {
  const journal = await GuestJournal.create();
  try {
    const attached = await attachImage(image, { ...options, journal });
    const mountBase = join(stateDir(), "mnt");
    await mkdir(mountBase, { recursive: true, mode: 0o700 });
    const mounted = await mountGuest(attached, {
      journal,
      readOnly: options.readOnly,
      mountBase,
      signal: options.signal,
    });
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await journal.undoAll();
    };
    return {
      attached,
      mounted,
      async unmount() {
        for (const entry of [...journal.pending].reverse())
          if (entry.action.kind === "mount") await journal.undo(entry.id);
      },
      async commit(output = image, format?: string, commitOptions: CommitOptions = {}) {
        // Unmount and detach first, keeping the working copy until it has been converted back.
        const keep = journal.pending.filter((e) => e.action.kind === "file").map((e) => e.id);
        for (const entry of [...journal.pending].reverse()) if (!keep.includes(entry.id)) await journal.undo(entry.id);
        await commitWorkingCopy(attached, output, format, {
          ...commitOptions,
          // Journaled before it exists: after a kill -9, `guest cleanup` removes the half-written output too.
          recordTemporary: async (path) => void (await journal.record({ kind: "file", path })),
        });
        await close();
      },
      close,
    };
  } catch (e) {
    await journal.undoAll().catch((undoError: unknown) => {
      throw new GuestAccessError(`${(e as Error).message}; and then: ${(undoError as Error).message}`, {
        cause: new AggregateError([e, undoError]),
      });
    });
    throw e;
  }
}
