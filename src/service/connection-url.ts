/**
 * Connection URLs (postgres://user:password@host/db, redis://:password@host:port) carry a password: whatever the
 * service prints or puts in an error shows them through `redactUrl`, never as given.
 */

/** The URL with its password (and a user-only credential's user) replaced by `***`; unparsable ones hidden whole. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "(a connection URL that does not parse)";
  }
  if (parsed.password) parsed.password = "***";
  // Some clients take `redis://secret@host` (no colon) as a password alone.
  else if (parsed.username && parsed.protocol.startsWith("redis")) parsed.username = "***";
  const search = new URLSearchParams(parsed.search);
  for (const key of [...search.keys()]) if (/pass|secret|token/i.test(key)) search.set(key, "***");
  parsed.search = search.toString();
  return parsed.toString();
}
