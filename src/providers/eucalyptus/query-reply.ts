/**
 * Reading the parsed XML of a Query reply (query-client.ts): lists are `<name><item>…</item></name>` in both
 * the Eucalyptus message bindings and EC2's, and every value is text. Missing or empty elements read as
 * undefined or [] rather than throwing, since the clouds leave out what they do not know.
 */
/** The list under `<name><item>…</item></name>` in a reply element, [] when absent or empty. */
export function itemsOf(parent: unknown, name: string): Record<string, unknown>[] {
  const holder = (parent as Record<string, unknown> | undefined)?.[name];
  if (typeof holder !== "object" || holder === null) return [];
  const items = (holder as { item?: unknown }).item;
  return Array.isArray(items)
    ? items.filter((i): i is Record<string, unknown> => typeof i === "object" && i !== null)
    : [];
}

/** The strings under `<name><item>…</item></name>` (a list of plain values, e.g. a service's `uris`). */
export function stringItemsOf(parent: unknown, name: string): string[] {
  const holder = (parent as Record<string, unknown> | undefined)?.[name];
  const items = typeof holder === "object" && holder !== null ? (holder as { item?: unknown }).item : undefined;
  return Array.isArray(items) ? items.filter((i): i is string => typeof i === "string") : [];
}

/** A string field of a reply element, undefined when absent or empty. */
export function textOf(parent: unknown, name: string): string | undefined {
  const value = (parent as Record<string, unknown> | undefined)?.[name];
  return typeof value === "string" && value !== "" ? value : typeof value === "number" ? String(value) : undefined;
}
