/** The fields of an fstab or crypttab line, or null for a blank line or a comment. */
export function tabFields(line: string): string[] | null {
  const trimmed = line.trim();
  if (!trimmed || trimmed.startsWith("#")) return null;
  return trimmed.split(/\s+/);
}

/**
 * Replaces the `index`th whitespace-separated field of a line, keeping the spacing around it and every other
 * field exactly as it was.
 */
export function replaceField(line: string, index: number, value: string): string {
  let field = -1;
  return line.replace(/\S+/g, (token) => (++field === index ? value : token));
}

/** The device fstab mounts at `/`, or null. */
export function fstabRootDevice(fstab: string): string | null {
  for (const line of fstab.split("\n")) {
    const f = tabFields(line);
    if (f && f[1] === "/") return f[0]!;
  }
  return null;
}
