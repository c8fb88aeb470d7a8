// POST /jobs on one HTTP keep-alive connection over the daemon's Unix socket: how the bench
// enqueues over HTTP (http-enqueue.mjs, paired-builds.mjs --http, profile-builds.mjs --http).
//
// Two clients. "lean" (the default): one net socket, each request written as one string
// (a fixed head, its content-length, the body) and the reply read by its content-length, as
// load tools such as wrk do; a peer is measured with its own client at its best, and this is
// HTTP's client at its best in node (undici is not installed in bench/, and node's bundled
// copy cannot be pointed at a Unix socket without it). "node": node:http's request() with a
// keep-alive Agent, what a plain node program would write; it costs the client about twice
// the CPU per call, so http-enqueue.mjs reports it too.
import { Agent, request } from "node:http";
import { connect } from "node:net";

/** post(spec) resolves once the reply's body is read (rejects on a status other than 2xx). */
export function httpPoster(socketPath, { client = "lean" } = {}) {
  if (client === "node") return nodePoster(socketPath);
  if (client === "lean") return leanPoster(socketPath);
  throw new Error(`unknown HTTP client ${client} (lean or node)`);
}

function nodePoster(socketPath) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (spec) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify(spec);
      const req = request({ socketPath, path: "/jobs", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => (res.statusCode >= 200 && res.statusCode < 300 ? resolve() : reject(new Error(`POST /jobs: ${res.statusCode} ${Buffer.concat(chunks)}`))));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

const HEAD = "POST /jobs HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ";
const END_OF_HEAD = Buffer.from("\r\n\r\n");

/**
 * One request at a time on one connection (post awaits its reply before the next, as the
 * bench does); a reply must carry content-length (every JSON reply of the daemon does).
 */
function leanPoster(socketPath) {
  const socket = connect(socketPath);
  let buffered = Buffer.alloc(0);
  /** The call waiting for its reply: { resolve, reject }, or null. */
  let waiting = null;
  let failure = null;
  const fail = (err) => {
    failure ??= err;
    const w = waiting;
    waiting = null;
    w?.reject(failure);
  };
  socket.on("error", fail);
  socket.on("close", () => fail(new Error("POST /jobs: the connection closed")));
  socket.on("data", (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    const headEnd = buffered.indexOf(END_OF_HEAD);
    if (headEnd < 0) return;
    const head = buffered.toString("latin1", 0, headEnd);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!m) return fail(new Error(`POST /jobs: a reply without content-length: ${head}`));
    const end = headEnd + 4 + Number(m[1]);
    if (buffered.length < end) return;
    const status = Number(head.slice(9, 12));
    const body = buffered.subarray(headEnd + 4, end);
    buffered = buffered.subarray(end);
    const w = waiting;
    waiting = null;
    if (!w) return fail(new Error(`POST /jobs: a reply nobody asked for: ${head}`));
    if (status >= 200 && status < 300) w.resolve();
    else w.reject(new Error(`POST /jobs: ${status} ${body}`));
  });
  const post = (spec) =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      if (waiting) return reject(new Error("lean poster: one request at a time"));
      waiting = { resolve, reject };
      const body = JSON.stringify(spec);
      socket.write(`${HEAD}${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  return { post, close: () => socket.destroy() };
}
