/**
 * `chromogenic guest cleanup` as a function: undoes what runs killed before they could undo it themselves
 * (kill -9, a crash, a power cut) left on the host — mounts, LVM activations, loop devices, working copies —
 * from the journals they left in the state folder. A journal of a process still alive is left alone unless
 * `force`: that run is still using what it made.
 */
import { processAlive } from "../../util/process-alive.js";
import { GuestJournal } from "./guest-journal.js";

export interface LeftoverCleanupOptions {
  /** Also undo journals of processes that still seem alive. */
  readonly force?: boolean;
}

export interface LeftoverJournal {
  /** The journal file. */
  readonly journal: string;
  /** The process that wrote it. */
  readonly pid: number;
  /** undone: every change it recorded is undone; skipped: its process is alive; failed: see `error`. */
  readonly outcome: "undone" | "skipped" | "failed";
  /** Changes it still recorded as made, before this ran. */
  readonly changes: number;
  readonly error?: string;
}

export async function cleanupGuestLeftovers(options: LeftoverCleanupOptions = {}): Promise<LeftoverJournal[]> {
  const results: LeftoverJournal[] = [];
  for (const path of await GuestJournal.list()) {
    const { journal, pid } = await GuestJournal.load(path);
    const changes = journal.pending.length;
    if (!options.force && processAlive(pid)) {
      results.push({ journal: path, pid, outcome: "skipped", changes });
      continue;
    }
    try {
      await journal.undoAll();
      results.push({ journal: path, pid, outcome: "undone", changes });
    } catch (e) {
      results.push({ journal: path, pid, outcome: "failed", changes, error: (e as Error).message });
    }
  }
  return results;
}
