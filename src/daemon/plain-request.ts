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

const REQUEST_LINE = /^(GET|POST|PATCH|DELETE) (\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*) HTTP\/1\.1$/;
/**
 * A header line: a token, a colon, the value (visible ASCII, spaces and tabs; no obs-text),
 * not ending in a tab (node keeps a tab there in the value: "close\t" is not "close").
 */
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):((?:[\t\x20-\x7e]*[\x20-\x7e])?)$/;
/** Headers that change a request's framing or meaning beyond what this reader follows. */
const NOT_PLAIN = new Set(["transfer-encoding", "upgrade", "expect", "te", "trailer", "http2-settings"]);

/**
 * The plain request at the start of `buf`, whole (its head and all of its body), or null:
 * not plain, or not yet whole. `maxBody`: a longer declared body is not plain (node answers
 * it 413, reading on as it does).
 */
export function readPlainRequest(buf: Buffer, maxBody: number): PlainRequest | null {
  const headEnd = buf.indexOf("\r\n\r\n", 0, "latin1");
  if (headEnd < 0 || headEnd > PLAIN_MAX_HEAD) return null;
  // A bare CR or LF left in a line fails its pattern (neither takes one): node may read the lines otherwise.
  const lines = buf.toString("latin1", 0, headEnd).split("\r\n");
  const first = REQUEST_LINE.exec(lines[0]!);
  if (!first) return null;
  let host = 0;
  let length: number | undefined;
  let contentType: string | undefined;
  let connection: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const h = HEADER_LINE.exec(lines[i]!);
    if (!h) return null;
    const name = h[1]!.toLowerCase();
    const value = h[2]!.trim(); // only spaces and tabs can be around it, and no tab after it (HEADER_LINE)
    if (NOT_PLAIN.has(name)) return null;
    if (name === "host") host++;
    else if (name === "content-length") {
      // Digits; node takes spaces after them, not a tab.
      if (length !== undefined || !/^[\t ]*\d{1,10} *$/.test(h[2]!)) return null;
      length = Number(value);
    } else if (name === "content-type") {
      if (contentType !== undefined) return null;
      contentType = value;
    } else if (name === "connection") {
      if (connection !== undefined) return null;
      connection = value.toLowerCase();
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
