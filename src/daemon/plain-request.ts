// Plain requests: the HTTP requests the daemon answers without node's HTTP server (the
// plain lane, ./server.ts). One-by-one enqueues over HTTP spent about 60 µs of the daemon's
// main thread per call more than over RPC, nearly all in node's per-request machinery (an
// IncomingMessage and a ServerResponse, each a stream with its events, timers and ticks).
//
// A plain request is a narrow, strict subset of HTTP/1.1, read here byte for byte; whatever
// it is, node's parser (llhttp) would read it the same way. Anything else — another version
// or method, a header this reader does not take, a framing it does not know, a request not
// yet whole in the bytes at hand — is not plain, and the connection goes to node's HTTP
// server with the bytes as they came, for good: odd and slow clients meet node's rules.

/** The longest request head read here (node's own limit is 16 KiB); a longer one goes to node. */
export const PLAIN_MAX_HEAD = 8 * 1024;

export interface PlainRequest {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  /** The request target as sent ("/jobs?limit=5"). */
  target: string;
  /** The Content-Type header's value, trimmed, or undefined without one. */
  contentType: string | undefined;
  /** The client asked to close after this request (Connection: close). */
  close: boolean;
  /** Its body (Content-Length bytes; none without the header). */
  body: Buffer;
  /** Bytes of the buffer the request took, head and body: the next request starts there. */
  size: number;
}

const REQUEST_LINE = /^(GET|POST|PATCH|DELETE) (\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*) HTTP\/1\.1\r\n/;
/**
 * A header line, read where the last one ended (sticky): a token, a colon, the value
 * (visible ASCII, spaces and tabs; no obs-text) not ending in a tab (node keeps a tab there
 * in the value: "close\t" is not "close"), CRLF. Neither pattern takes a bare CR or LF, so
 * node cannot read the lines otherwise.
 */
const HEADER_LINE = /([!#$%&'*+\-.^_`|~0-9A-Za-z]+):((?:[\t\x20-\x7e]*[\x20-\x7e])?)\r\n/y;
/** Headers that change a request's framing or meaning beyond what this reader follows. */
const NOT_PLAIN = new Set(["transfer-encoding", "upgrade", "expect", "te", "trailer", "http2-settings"]);
/** The lengths of the names looked at (the others are passed over without lower-casing them). */
const LOOKED_AT = new Set([...NOT_PLAIN, "host", "content-length", "content-type", "connection"].map((n) => n.length));

/**
 * The plain request at the start of `buf`, whole (its head and all of its body), or null:
 * not plain, or not yet whole. `maxBody`: a longer declared body is not plain (node answers
 * it 413, reading on as it does).
 */
export function readPlainRequest(buf: Buffer, maxBody: number): PlainRequest | null {
  const headEnd = buf.indexOf("\r\n\r\n", 0, "latin1");
  if (headEnd < 0 || headEnd > PLAIN_MAX_HEAD) return null;
  // The head with its last line's CRLF: every line ends in one.
  const head = buf.toString("latin1", 0, headEnd + 2);
  const first = REQUEST_LINE.exec(head);
  if (!first) return null;
  let host = 0;
  let length: number | undefined;
  let contentType: string | undefined;
  let connection: string | undefined;
  HEADER_LINE.lastIndex = first[0].length;
  while (HEADER_LINE.lastIndex < head.length) {
    const h = HEADER_LINE.exec(head);
    if (!h) return null;
    if (!LOOKED_AT.has(h[1]!.length)) continue;
    const name = h[1]!.toLowerCase();
    if (NOT_PLAIN.has(name)) return null;
    if (name === "host") host++;
    else if (name === "content-length") {
      // Digits; node takes spaces after them, not a tab.
      if (length !== undefined || !/^[\t ]*\d{1,10} *$/.test(h[2]!)) return null;
      length = Number(h[2]);
    } else if (name === "content-type") {
      if (contentType !== undefined) return null;
      contentType = h[2]!.trim(); // only spaces and tabs can be around it, and no tab after it
    } else if (name === "connection") {
      if (connection !== undefined) return null;
      connection = h[2]!.trim().toLowerCase();
      if (connection !== "keep-alive" && connection !== "close") return null;
    }
  }
  if (host !== 1) return null;
  const bodyAt = headEnd + 4;
  const size = bodyAt + (length ?? 0);
  if ((length ?? 0) > maxBody || size > buf.length) return null;
  return {
    method: first[1] as PlainRequest["method"],
    target: first[2]!,
    contentType,
    close: connection === "close",
    body: buf.subarray(bodyAt, size),
    size,
  };
}
