/**
 * The messages of a server-sent event stream (the WHATWG "text/event-stream" format) read from a fetch()
 * body: what EventSource does, for clients that must send headers EventSource cannot (a bearer token) and
 * resume with their own Last-Event-ID. Lines end with LF, CR or CRLF; `data:` lines of one message join with
 * LF; a blank line ends a message; comments (`:` lines, the server's keep-alives) are skipped.
 */

export interface SseMessage {
  /** The `id:` field, when the message had one. */
  readonly id?: string;
  /** The `event:` field; "message" when absent. */
  readonly event: string;
  readonly data: string;
}

/** A message's lines are bounded so that a server that never ends one cannot fill the client's memory. */
const MAX_MESSAGE_CHARS = 4 * 2 ** 20;

export async function* sseMessages(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = "";
  let id: string | undefined;
  let event = "";
  let data: string[] = [];
  let size = 0;
  let skipLineFeed = false;
  const dispatch = (): SseMessage | undefined => {
    const message = data.length
      ? { ...(id !== undefined ? { id } : {}), event: event || "message", data: data.join("\n") }
      : undefined;
    id = undefined;
    event = "";
    data = [];
    size = 0;
    return message;
  };
  const field = (line: string): SseMessage | undefined => {
    if (line === "") return dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    size += value.length;
    if (size > MAX_MESSAGE_CHARS)
      throw new Error(`an event stream message longer than ${MAX_MESSAGE_CHARS} characters`);
    if (name === "data") data.push(value);
    else if (name === "event") event = value;
    else if (name === "id" && !value.includes("\0")) id = value;
    return undefined;
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    if (skipLineFeed && buffer.startsWith("\n")) buffer = buffer.slice(1);
    skipLineFeed = false;
    for (;;) {
      const end = buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = buffer.slice(0, end);
      if (buffer[end] === "\r") {
        // A CR at the end of the chunk may be the first half of a CRLF split between chunks.
        if (end + 1 === buffer.length) skipLineFeed = true;
        buffer = buffer.slice(end + (buffer[end + 1] === "\n" ? 2 : 1));
      } else buffer = buffer.slice(end + 1);
      const message = field(line);
      if (message) yield message;
    }
    if (buffer.length > MAX_MESSAGE_CHARS)
      throw new Error(`an event stream line longer than ${MAX_MESSAGE_CHARS} characters`);
  }
  // A message the stream ended in the middle of is dropped, as EventSource drops it.
}
