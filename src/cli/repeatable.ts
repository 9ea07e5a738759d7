/**
 * Commander's collector for an option given more than once (`--property a=1 --property b=2`): each use takes
 * exactly one value. Variadic options (`<path...>`) took every word after them, positional arguments included,
 * so `--allow-reference base.qcow2 disk.qcow2` left the command without its image.
 */
export function repeatable(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}
