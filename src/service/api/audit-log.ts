/**
 * Who asked for what: one JSON line per request that changes something (a submission, a cancel), whatever its
 * outcome, refused ones included. A line names the token by its name, never the token; a job by its kind, the
 * clouds it names and its id, never its whole spec (a line must stay short and safe to ship to a log store).
 *
 *   {"time":"…","who":"portal","action":"submit","kind":"migrate","clouds":["a","b"],"job":"…","status":201,"outcome":"created"}
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { once } from "node:events";
import type { Writable } from "node:stream";

export interface AuditEntry {
  readonly who: string | null;
  readonly action: "submit" | "cancel";
  readonly address: string;
  readonly job?: string;
  readonly kind?: string;
  readonly clouds?: readonly string[];
  readonly status: number;
  /** created, existing, cancelled, cancel-requested, or the refusal's error code. */
  readonly outcome: string;
}

export class AuditLog {
  private constructor(
    private readonly out: Writable,
    private readonly owned: WriteStream | undefined,
  ) {}

  /** Appends to `file` (made 0600), or writes to stderr without one. */
  static open(file: string | undefined): AuditLog {
    if (!file) return new AuditLog(process.stderr, undefined);
    const stream = createWriteStream(file, { flags: "a", mode: 0o600 });
    return new AuditLog(stream, stream);
  }

  write(entry: AuditEntry): void {
    this.out.write(JSON.stringify({ time: new Date().toISOString(), ...entry }) + "\n");
  }

  async close(): Promise<void> {
    if (!this.owned) return;
    this.owned.end();
    if (!this.owned.closed) await once(this.owned, "close");
  }
}
