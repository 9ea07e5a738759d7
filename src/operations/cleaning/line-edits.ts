/**
 * Line-exact text edits: a file is a list of lines each keeping its own terminator, so removing lines never
 * joins the line before a removed block to the line after it, and untouched lines come back byte for byte.
 */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** A line without its terminator (and without a CR before it). */
export function bare(line: string): string {
  return line.replace(/\r?\n$/, "");
}

export interface MarkedBlock {
  /** e.g. "Atmosphere System". */
  readonly label: string;
  readonly start: RegExp;
  readonly end: RegExp;
}

/** The blocks Atmosphere's deployment, Nagios and Sensu wrote into sudoers, sshd_config and skel. */
export const DEPLOYMENT_BLOCKS: readonly MarkedBlock[] = [
  { label: "Atmosphere System", start: /^\s*## Atmosphere System\b/, end: /^\s*## End Atmosphere System\b/ },
  { label: "Nagios", start: /^\s*# Begin Nagios\b/, end: /^\s*# End Nagios\b/ },
  { label: "Sensu", start: /^\s*# Begin Sensu\b/, end: /^\s*# End Sensu\b/ },
];

export interface BlockRemoval {
  readonly text: string;
  /** One entry per removed block: its label and 1-based first and last line in the original text. */
  readonly removed: readonly { label: string; first: number; last: number }[];
  /** Start markers with no end marker after them: left in place (never "delete to the end of the file"). */
  readonly unterminated: readonly { label: string; line: number }[];
}

/**
 * Removes each marked block (start marker line through the next end marker line, inclusive) separately:
 * several blocks are several removals (never everything from the first start to the last end), a block on
 * line 1 is found like any other, and the lines around a block are kept exactly as they were.
 */
export function removeMarkedBlocks(text: string, blocks: readonly MarkedBlock[]): BlockRemoval {
  const lines = splitLines(text);
  const keep: string[] = [];
  const removed: { label: string; first: number; last: number }[] = [];
  const unterminated: { label: string; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = bare(lines[i]!);
    const block = blocks.find((b) => b.start.test(line));
    if (block) {
      let end = -1;
      for (let j = i + 1; j < lines.length; j++) {
        if (block.end.test(bare(lines[j]!))) {
          end = j;
          break;
        }
      }
      if (end >= 0) {
        removed.push({ label: block.label, first: i + 1, last: end + 1 });
        i = end;
        continue;
      }
      unterminated.push({ label: block.label, line: i + 1 });
    }
    keep.push(lines[i]!);
  }
  return { text: keep.join(""), removed, unterminated };
}

/** Describes removed blocks for a change record: "removed 3 lines (## Atmosphere System … at lines 4-6)". */
export function describeBlocks(removed: BlockRemoval["removed"]): string {
  const count = removed.reduce((n, b) => n + b.last - b.first + 1, 0);
  const which = removed.map((b) => `${b.label} at lines ${b.first}-${b.last}`).join(", ");
  return `removed ${count} line${count === 1 ? "" : "s"} in ${removed.length} marked block${removed.length === 1 ? "" : "s"} (${which})`;
}

/** Removes every line `drop` selects; returns null when none is. */
export function removeLines(
  text: string,
  drop: (line: string, index: number) => boolean,
): { text: string; count: number; numbers: number[] } | null {
  const lines = splitLines(text);
  const numbers: number[] = [];
  const keep = lines.filter((l, i) => {
    if (drop(bare(l), i)) {
      numbers.push(i + 1);
      return false;
    }
    return true;
  });
  if (!numbers.length) return null;
  return { text: keep.join(""), count: numbers.length, numbers };
}

/** Replaces lines one by one (`map` returns the new bare line, or the same one); terminators are kept. */
export function mapLines(
  text: string,
  map: (line: string, index: number) => string,
): { text: string; numbers: number[] } {
  const numbers: number[] = [];
  const out = splitLines(text).map((l, i) => {
    const b = bare(l);
    const next = map(b, i);
    if (next === b) return l;
    numbers.push(i + 1);
    return next + l.slice(b.length);
  });
  return { text: out.join(""), numbers };
}

export function lineList(numbers: readonly number[]): string {
  return `line${numbers.length === 1 ? "" : "s"} ${numbers.join(", ")}`;
}
