/**
 * The head of an HTTP/1.1 response (RFC 9112): its status line and header fields, and how its body is framed.
 * Parsed by hand for the HTTP connection (http-connection.ts); what a server sends is checked like any other
 * input: a head is bounded, must be well formed, and a body whose length the head states two ways at once
 * (RFC 9112 §6.3: Transfer-Encoding with Content-Length, or two different Content-Lengths) is refused, since a
 * reader and a proxy could then disagree on where it ends.
 */

/** How the body's end is known: a stated length, chunks, the connection's end, or no body at all. */
export type BodyFraming =
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" }
  | { readonly kind: "none" };

export interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  /** Field names in lower case; repeated fields joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  readonly framing: BodyFraming;
  /** Whether the connection may carry another request once this body is read. */
  readonly keepAlive: boolean;
}

/** A head that is not HTTP/1.x as RFC 9112 writes it. */
export class MalformedHeadError extends Error {}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;
/** A field name is a token; the value may not hold control characters other than tab. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what the pattern must refuse
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$/;

/**
 * Parses `text`, the head up to (not including) the empty line that ends it, answered to a request of
 * `method`. Throws MalformedHeadError.
 */
export function parseResponseHead(text: string, method: string): ResponseHead {
  const lines = text.split("\r\n");
  const status = STATUS_LINE.exec(lines[0] ?? "");
  if (!status) throw new MalformedHeadError(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]?.slice(0, 80))}`);
  const headers = new Map<string, string>();
  const lengths = new Set<string>();
  for (const line of lines.slice(1)) {
    // Obsolete line folding (a line starting with white space) is refused, as RFC 9112 §5.2 allows.
    const field = FIELD.exec(line);
    if (!field) throw new MalformedHeadError(`a malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = field[1]!.toLowerCase();
    const value = field[2]!;
    if (name === "content-length") lengths.add(value);
    const earlier = headers.get(name);
    headers.set(name, earlier === undefined ? value : `${earlier}, ${value}`);
  }
  const code = Number(status[2]);
  const http11 = status[1] === "1";
  const tokens = (name: string) =>
    (headers.get(name) ?? "")
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean);
  const connection = tokens("connection");
  const keepAlive = http11 ? !connection.includes("close") : connection.includes("keep-alive");
  return {
    status: code,
    statusText: status[3] ?? "",
    headers,
    framing: framingOf(code, method, tokens("transfer-encoding"), lengths),
    keepAlive,
  };
}

function framingOf(status: number, method: string, codings: string[], lengths: Set<string>): BodyFraming {
  if (method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { kind: "none" };
  }
  if (codings.length > 0) {
    if (lengths.size > 0) throw new MalformedHeadError("both Transfer-Encoding and Content-Length");
    // Chunked must come last; any other coding would change the bytes, which a byte range cannot allow.
    if (codings.length !== 1 || codings[0] !== "chunked") {
      throw new MalformedHeadError(`an unsupported Transfer-Encoding: ${codings.join(", ")}`);
    }
    return { kind: "chunked" };
  }
  if (lengths.size === 0) return { kind: "close" };
  // "Content-Length: 5, 5" is one length repeated; "5, 6" is two.
  const values = new Set([...lengths].flatMap((v) => v.split(",").map((s) => s.trim())));
  const [only] = values;
  if (values.size !== 1 || !only || !/^\d{1,15}$/.test(only)) {
    throw new MalformedHeadError(`an invalid Content-Length: ${[...lengths].join(", ").slice(0, 80)}`);
  }
  return { kind: "length", length: Number(only) };
}

/** Header names and values a request may carry: no line breaks, so no header can smuggle another. */
export function checkRequestField(name: string, value: string): void {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    throw new MalformedHeadError(`an invalid header name: ${JSON.stringify(name.slice(0, 40))}`);
  }
  if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
    // The value is not quoted: it may be a credential.
    throw new MalformedHeadError(`the value of header ${name} holds a control character or one beyond Latin-1`);
  }
}
