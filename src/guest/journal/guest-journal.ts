import { appendFile, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { JournalAction, JournalEntry } from "./journal-entry.js";
import { undoAction } from "./undo-action.js";
import { GuestAccessError } from "../guest-access-error.js";

/** Where journals live: $CHROMOGENIC_STATE_DIR, else /var/lib/chromogenic (we run as root). */
export function stateDir(): string {
  return process.env.CHROMOGENIC_STATE_DIR ?? "/var/lib/chromogenic";
}

function journalDir(): string {
  return join(stateDir(), "guest-journals");
}

type JournalLine =
  | { readonly type: "session"; readonly pid: number; readonly started: string }
  | { readonly type: "do"; readonly id: number; readonly action: JournalAction }
  | { readonly type: "device"; readonly id: number; readonly device: string }
  | { readonly type: "undone"; readonly id: number };

/**
 * The record of everything one run changed on the host (loop devices, LVM activations, mounts, scratch
 * files), as an append-only JSON-lines file synced after every line. `undoAll` reverses it newest first; a
 * run killed with -9 leaves the file for `chromogenic guest cleanup`.
 */
export class GuestJournal {
  private constructor(
    readonly path: string,
    private readonly entries: JournalEntry[],
  ) {}

  static async create(): Promise<GuestJournal> {
    await mkdir(journalDir(), { recursive: true, mode: 0o700 });
    const path = join(journalDir(), `${process.pid}-${Date.now()}.jsonl`);
    const journal = new GuestJournal(path, []);
    await journal.append({ type: "session", pid: process.pid, started: new Date().toISOString() });
    return journal;
  }

  static async load(path: string): Promise<{ journal: GuestJournal; pid: number }> {
    const entries = new Map<number, JournalEntry>();
    let pid = 0;
    for (const text of (await readFile(path, "utf8")).split("\n")) {
      if (!text.trim()) continue;
      let line: JournalLine;
      try {
        line = JSON.parse(text) as JournalLine;
      } catch {
        continue; // a line cut short by a crash: the change it announced was never made
      }
      if (line.type === "session") pid = line.pid;
      else if (line.type === "do") entries.set(line.id, { id: line.id, action: line.action, undone: false });
      else if (line.type === "device") {
        const entry = entries.get(line.id);
        if (entry) entry.device = line.device;
      } else if (line.type === "undone") {
        const entry = entries.get(line.id);
        if (entry) entry.undone = true;
      }
    }
    return { journal: new GuestJournal(path, [...entries.values()]), pid };
  }

  /** Paths of the journals in the state folder (load one to see which process wrote it). */
  static async list(): Promise<string[]> {
    const names = await readdir(journalDir()).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith(".jsonl")).map((n) => join(journalDir(), n));
  }

  private async append(line: JournalLine): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(line)}\n`, { mode: 0o600 });
    const h = await open(this.path, "r");
    try {
      await h.datasync();
    } finally {
      await h.close();
    }
  }

  /** Records a change about to be made; returns its id. */
  async record(action: JournalAction): Promise<number> {
    const id = this.entries.length + 1;
    await this.append({ type: "do", id, action });
    this.entries.push({ id, action, undone: false });
    return id;
  }

  async noteDevice(id: number, device: string): Promise<void> {
    await this.append({ type: "device", id, device });
    this.entries.find((e) => e.id === id)!.device = device;
  }

  /** Undoes one change now (a mount probed and released) and notes it. */
  async undo(id: number): Promise<void> {
    const entry = this.entries.find((e) => e.id === id);
    if (!entry || entry.undone) return;
    await undoAction(entry);
    entry.undone = true;
    await this.append({ type: "undone", id });
  }

  get pending(): readonly JournalEntry[] {
    return this.entries.filter((e) => !e.undone);
  }

  /**
   * Undoes every change still in place, newest first. Keeps going past a failure (a busy mount must not keep
   * the loop devices under other mounts attached) and throws the failures together at the end; the journal
   * file is removed only when nothing is left to undo.
   */
  async undoAll(): Promise<void> {
    const failures: string[] = [];
    for (const entry of [...this.entries].reverse()) {
      if (entry.undone) continue;
      try {
        await this.undo(entry.id);
      } catch (e) {
        failures.push(`${entry.action.kind}: ${(e as Error).message.trim()}`);
      }
    }
    if (failures.length)
      throw new GuestAccessError(`could not undo everything (journal kept at ${this.path}): ${failures.join("; ")}`);
    await unlink(this.path).catch(() => undefined);
  }
}
