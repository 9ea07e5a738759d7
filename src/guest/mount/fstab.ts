export interface FstabEntry {
  readonly spec: string;
  readonly mountPoint: string;
  readonly type: string;
  readonly options: readonly string[];
}

/** Undoes fstab's octal escapes (`\040` for a space in a mount point). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /etc/fstab; malformed lines are skipped as mount(8) skips them, so a sloppy guest still mounts. */
export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    if (fields.length < 3) continue;
    out.push({
      spec: unescape(fields[0]!),
      mountPoint: unescape(fields[1]!),
      type: fields[2]!,
      options: (fields[3] ?? "defaults").split(","),
    });
  }
  return out;
}
