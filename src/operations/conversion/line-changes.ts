import { bare, lineList, splitLines } from "../cleaning/line-edits.js";

/** What happened to one line of a configuration file; the report's before/after of an edit. */
export interface LineChange {
  readonly kind: "changed" | "commented" | "removed" | "added";
  /** 1-based number of the line in the file as it was; absent for a line added at the end. */
  readonly line?: number;
  /** The line as it was (absent for an added line). */
  readonly before?: string;
  /** The lines now in its place: one for a changed line, a note and the commented line, none when removed. */
  readonly after: readonly string[];
}

/** A rewritten file: its new text, the lines that changed, and one sentence for people. */
export interface LinesEdit {
  readonly text: string;
  readonly lines: readonly LineChange[];
  readonly detail: string;
}

/** What `rewriteLines`' callback decides for one line: keep it (null), or this change. */
export type LineDecision = { readonly kind: LineChange["kind"]; readonly after: readonly string[] } | null;

/**
 * The marker every note we write starts with, so a person reading the file sees who disabled a line and why.
 * Configuration files are rewritten byte for byte (latin1), so notes are plain ASCII.
 */
export const NOTE_PREFIX = "# chromogenic (Xen to KVM):";

/** A line disabled with a note above it: the note says why, the line itself stays as it was after a `#`. */
export function commentOut(line: string, why: string): LineDecision {
  return { kind: "commented", after: [`${NOTE_PREFIX} ${why}`, `#${line}`] };
}

/**
 * Rewrites a text file line by line: `decide` sees each line without its terminator and keeps it or returns
 * its replacement; `append` lines go at the end. Untouched lines come back byte for byte, replacement lines
 * take the terminator of the line they replace, and a file that did not end with a newline gets one before
 * appended lines. Null when nothing changes (so a second run reports nothing).
 */
export function rewriteLines(
  text: string,
  decide: (line: string, index: number) => LineDecision,
  append: readonly string[] = [],
): LinesEdit | null {
  const out: string[] = [];
  const lines: LineChange[] = [];
  splitLines(text).forEach((raw, i) => {
    const line = bare(raw);
    const decision = decide(line, i);
    if (!decision) {
      out.push(raw);
      return;
    }
    const terminator = raw.slice(line.length);
    // The last line may have no terminator; lines inserted before it still need one.
    const inner = terminator || "\n";
    out.push(decision.after.map((l, k) => l + (k === decision.after.length - 1 ? terminator : inner)).join(""));
    lines.push({ kind: decision.kind, line: i + 1, before: line, after: decision.after });
  });
  if (append.length) {
    const joined = out.join("");
    if (joined.length && !joined.endsWith("\n")) out.push("\n");
    for (const line of append) {
      out.push(`${line}\n`);
      lines.push({ kind: "added", after: [line] });
    }
  }
  if (!lines.length) return null;
  return { text: out.join(""), lines, detail: describeLineChanges(lines) };
}

const VERB: Readonly<Record<LineChange["kind"], string>> = {
  changed: "changed",
  commented: "commented out",
  removed: "removed",
  added: "added",
};

/** "changed line 1; commented out lines 4, 7; added 1 line at the end". */
export function describeLineChanges(lines: readonly LineChange[]): string {
  const parts: string[] = [];
  for (const kind of ["changed", "commented", "removed"] as const) {
    const numbers = lines.filter((l) => l.kind === kind).map((l) => l.line!);
    if (numbers.length) parts.push(`${VERB[kind]} ${lineList(numbers)}`);
  }
  const added = lines.filter((l) => l.kind === "added").length;
  if (added) parts.push(`added ${added} line${added === 1 ? "" : "s"} at the end`);
  return parts.join("; ");
}
