// readPlainRequest reads a narrow subset of HTTP/1.1 (src/daemon/plain-request.ts); whatever
// it takes, node's own HTTP parser must read the same way: the same method, target, content
// type, body and keep-alive. Each request here is also sent to a real node HTTP server, and
// what it saw is held against what readPlainRequest read. Requests it does not take go to
// node's server in the daemon, so those only need to be refused here.
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PLAIN_MAX_HEAD, readPlainRequest } from "../../src/daemon/plain-request.js";

const MAX_BODY = 1024;
const json = '{"type":"report","payload":{"i":1}}';
const post = (headers: string, body = json) => `POST /jobs HTTP/1.1\r\n${headers}\r\n${body}`;

/** Read by readPlainRequest, and read the same by node. */
const PLAIN = [
  `POST /jobs HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\n\r\n${json}`,
  `POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: Application/JSON; charset=utf-8\r\nContent-Length:${json.length}\r\nConnection: keep-alive\r\n\r\n${json}`,
  `POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-length: \t${json.length}  \r\nconnection: \tClose \r\n\r\n${json}`,
  `POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-length: 007\r\n\r\n{"a":1}`,
  "POST /queue/pause HTTP/1.1\r\nhost: x\r\n\r\n",
  "POST /queue/pause HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
  "GET /health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
  "GET /jobs/12?limit=5&status=pending HTTP/1.1\r\nhost: x\r\nx-empty:\r\nx-odd: a \"quoted\" (value) with\ttabs\r\n\r\n",
  "GET /tasks/~a_b-c!$&'()*+,;=:@%41 HTTP/1.1\r\nhost: x\r\n\r\n",
  "GET /jobs/../health HTTP/1.1\r\nhost: x\r\n\r\n",
  "GET /health HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nabcd",
  "DELETE /schedules/nightly HTTP/1.1\r\nhost: x\r\n\r\n",
  'PATCH /tasks/1 HTTP/1.1\r\nhost: x\r\ncontent-length: 21\r\n\r\n{"title":"caf\\u00e9"}',
];

/** Not plain: refused here (node's server takes them in the daemon). */
const NOT_PLAIN: [string, string][] = [
  ["HTTP/1.0", "GET /health HTTP/1.0\r\nhost: x\r\n\r\n"],
  ["HEAD", "HEAD /health HTTP/1.1\r\nhost: x\r\n\r\n"],
  ["lower-case method", "get /health HTTP/1.1\r\nhost: x\r\n\r\n"],
  ["absolute target", "GET http://x/health HTTP/1.1\r\nhost: x\r\n\r\n"],
  ["target with a quote", 'GET /jobs?a="b" HTTP/1.1\r\nhost: x\r\n\r\n'],
  ["target with a fragment", "GET /jobs#a HTTP/1.1\r\nhost: x\r\n\r\n"],
  ["target with a backslash", "GET /jobs\\1 HTTP/1.1\r\nhost: x\r\n\r\n"],
  ["no host", "GET /health HTTP/1.1\r\n\r\n"],
  ["two hosts", "GET /health HTTP/1.1\r\nhost: x\r\nhost: y\r\n\r\n"],
  ["chunked", post("host: x\r\ntransfer-encoding: chunked\r\n", `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`)],
  ["expect", post(`host: x\r\nexpect: 100-continue\r\ncontent-length: ${json.length}\r\n`)],
  ["upgrade", "GET /rpc HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: teamwork-rpc\r\n\r\n"],
  ["connection: upgrade alone", "GET /health HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\n\r\n"],
  ["two content-lengths", post(`host: x\r\ncontent-length: ${json.length}\r\ncontent-length: ${json.length}\r\n`)],
  ["a tab after the content-length (node refuses it)", post(`host: x\r\ncontent-length: ${json.length}\t\r\n`)],
  ["a tab and a space after the content-length", post(`host: x\r\ncontent-length: ${json.length}\t \r\n`)],
  ["a tab after a value (node keeps it)", post(`host: x\r\nconnection: close\t\r\ncontent-length: ${json.length}\r\n`)],
  ["signed content-length", post(`host: x\r\ncontent-length: +${json.length}\r\n`)],
  ["content-length list", post(`host: x\r\ncontent-length: ${json.length}, ${json.length}\r\n`)],
  ["body over the limit", post(`host: x\r\ncontent-length: ${MAX_BODY + 1}\r\n`, "x".repeat(MAX_BODY + 1))],
  ["two content-types", post(`host: x\r\ncontent-type: application/json\r\ncontent-type: text/plain\r\ncontent-length: ${json.length}\r\n`)],
  ["obs-fold", post(`host: x\r\nx-a: b\r\n  c\r\ncontent-length: ${json.length}\r\n`)],
  ["space before the colon", post(`host : x\r\ncontent-length: ${json.length}\r\n`)],
  ["obs-text in a value", post(`host: x\r\nx-a: caf\xe9\r\ncontent-length: ${json.length}\r\n`)],
  ["a control in a value", post(`host: x\r\nx-a: a\x01b\r\ncontent-length: ${json.length}\r\n`)],
  ["bare LF", `POST /jobs HTTP/1.1\nhost: x\ncontent-length: ${json.length}\n\n${json}`],
  ["bare LF in a header", post(`host: x\r\nx-a: a\nb: c\r\ncontent-length: ${json.length}\r\n`)],
  ["bare CR in a header", post(`host: x\r\nx-a: a\rb\r\ncontent-length: ${json.length}\r\n`)],
  ["head not whole", "GET /health HTTP/1.1\r\nhost: x\r\n"],
  ["body not whole", post(`host: x\r\ncontent-length: ${json.length + 5}\r\n`)],
  ["head over the limit", `GET /health HTTP/1.1\r\nhost: x\r\nx-pad: ${"a".repeat(PLAIN_MAX_HEAD)}\r\n\r\n`],
  ["empty", ""],
];

/** What node's server saw of each request, in order. */
interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  body: Buffer;
  keepAlive: boolean;
}

let dir: string;
let server: Server;
let socketPath: string;
const seen: Seen[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tw-plain-"));
  socketPath = join(dir, "s.sock");
  server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, contentType: req.headers["content-type"], body: Buffer.concat(chunks), keepAlive: res.shouldKeepAlive });
      res.end("ok");
    });
  });
  server.listen(socketPath);
  await once(server, "listening");
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends the bytes to node's server; resolves with what it saw (null: it refused them). */
async function throughNode(bytes: Buffer): Promise<Seen | null> {
  const before = seen.length;
  const socket = connect(socketPath);
  let reply = "";
  socket.on("data", (d: Buffer) => (reply += d.toString("latin1")));
  socket.end(bytes);
  await once(socket, "close");
  if (!/^HTTP\/1\.1 200 /.test(reply)) return null;
  return seen[before] ?? null;
}

describe("readPlainRequest", () => {
  it.each(PLAIN.map((r) => [r.split("\r\n")[0]!, r]))("reads %s as node does", async (_, text) => {
    const bytes = Buffer.from(text, "latin1");
    const p = readPlainRequest(bytes, MAX_BODY);
    expect(p).not.toBeNull();
    const node = await throughNode(bytes);
    expect(node).not.toBeNull();
    expect({ method: p!.method, url: p!.target, contentType: p!.contentType, body: p!.body.toString("latin1"), keepAlive: !p!.close }).toEqual({
      method: node!.method,
      url: node!.url,
      contentType: node!.contentType,
      body: node!.body.toString("latin1"),
      keepAlive: node!.keepAlive,
    });
    expect(p!.size).toBe(bytes.length);
  });

  it.each(NOT_PLAIN)("refuses %s", (_, text) => {
    expect(readPlainRequest(Buffer.from(text, "latin1"), MAX_BODY)).toBeNull();
  });

  it("agrees with node on 2,000 seeded random requests near the plain ones", async () => {
    let seed = 16;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const some = (pool: string, max: number) => Array.from({ length: Math.floor(rand() * (max + 1)) }, () => pick([...pool])).join("");
    const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");
    const odd = "\t\x01\x7f\x80\xe9\r\n";
    const ws = () => (rand() < 0.7 ? pick(["", " "]) : pick(["  ", "\t", " \t", "\t "]));
    const disagreements: string[] = [];
    let plain = 0;
    for (let n = 0; n < 2_000; n++) {
      const body = rand() < 0.5 ? json : "";
      const headers: string[] = [];
      const hosts = pick([1, 1, 1, 1, 1, 1, 0, 2]);
      for (let i = 0; i < hosts; i++) headers.push(`${pick(["host", "Host", "HOST"])}:${ws()}${some("abcxyz.:0-9", 6)}${ws()}`);
      if (rand() < 0.5) headers.push(`content-type:${ws()}${pick(["application/json", "application/json; charset=utf-8", "text/plain", ""])}${ws()}`);
      if (rand() < 0.8) headers.push(`${pick(["content-length", "Content-Length"])}:${ws()}${rand() < 0.8 ? "" : pick(["0", "+", "-"])}${rand() < 0.85 ? String(Buffer.byteLength(body)) : pick([String(Buffer.byteLength(body) + 1), "x"])}${ws()}`);
      if (rand() < 0.4) headers.push(`connection:${ws()}${pick(["keep-alive", "close", "Close", "KEEP-ALIVE", "upgrade", "keep-alive, close", ""])}${ws()}`);
      for (let i = Math.floor(rand() * 3); i > 0; i--) {
        const name = rand() < 0.8 ? pick(["x-a", "user-agent", "accept", "X-Trace_ID"]) : pick(["x b", "x\ta", "x(a)", "te", "expect", "x-a "]);
        headers.push(`${name}:${ws()}${some(ascii + (rand() < 0.2 ? odd : ""), 12)}${ws()}`);
      }
      headers.sort(() => rand() - 0.5);
      const eol = rand() < 0.05 ? "\n" : "\r\n";
      const target = `/${some("abz09-._~!$&'()*+,;=:@%/?" + (rand() < 0.2 ? "#\"<>\\^`{|}[] " : ""), 10)}`;
      const method = rand() < 0.9 ? pick(["GET", "POST", "PATCH", "DELETE"]) : pick(["HEAD", "get", "OPTIONS"]);
      const line = `${method} ${target} ${rand() < 0.9 ? "HTTP/1.1" : pick(["HTTP/1.0", "HTTP/2.0", "http/1.1"])}`;
      const text = `${line}${eol}${headers.map((h) => h + eol).join("")}${eol}${body}`;
      const bytes = Buffer.from(text, "latin1");
      const p = readPlainRequest(bytes, MAX_BODY);
      if (!p) continue;
      plain++;
      // Only the request read (what follows it is the next request's, or garbage node may refuse before answering the first).
      const node = await throughNode(bytes.subarray(0, p.size));
      const mine = { method: p.method, url: p.target, contentType: p.contentType, body: p.body.toString("latin1"), keepAlive: !p.close };
      const theirs = node && { method: node.method, url: node.url, contentType: node.contentType, body: node.body.toString("latin1"), keepAlive: node.keepAlive };
      if (JSON.stringify(mine) !== JSON.stringify(theirs)) disagreements.push(`${JSON.stringify(text)}: ${JSON.stringify(mine)} vs node ${JSON.stringify(theirs)}`);
    }
    expect(disagreements).toEqual([]);
    expect(plain).toBeGreaterThan(200); // the generator still reaches plain requests
  });

  it("reads the first of two requests in a row and says where the next starts", () => {
    const one = PLAIN[0]!;
    const two = PLAIN[6]!;
    const bytes = Buffer.from(one + two, "latin1");
    const p = readPlainRequest(bytes, MAX_BODY)!;
    expect(p.size).toBe(one.length);
    expect(readPlainRequest(bytes.subarray(p.size), MAX_BODY)).toMatchObject({ method: "GET", target: "/health" });
  });
});
