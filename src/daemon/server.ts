// The socket API's HTTP layer: match a route, read and validate its input, call its
// handler, write the reply. Only this file writes HTTP. Bad input of any kind becomes a
// 4xx JSON error and a log line; nothing a client sends can crash the daemon.
//
// The same routes are also served as RPC: a connection that asks `GET /rpc` with
// `Upgrade: teamwork-rpc` switches to one JSON object per line each way (docs/protocol.md).
// That is what the CLI and the client library use: a call costs a fraction of an HTTP
// request on both sides. Streams stay on HTTP (SSE).
//
// HTTP requests in the common, plain form (./plain-request.ts) on a JSON route are read and
// answered by the plain lane below, not by node's HTTP server, with the same answers: node's
// per-request objects cost a one-by-one enqueue about 60 µs of the main thread more than RPC.
// A connection's first request that is not plain moves it to node's server for good.

import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { TeamworkError } from "../lib/errors.js";
import { LineDecoder } from "../lib/line-decoder.js";
import type { Logger } from "../lib/logger.js";
import { HTTP_STATUS, storeFailure, type ErrorBody } from "../protocol/errors.js";
import { StoreError } from "../store/errors.js";
import { BYTE_ROUTES, MAX_BODY_BYTES, routes, SSE_ROUTES, type Method, type RouteName } from "../protocol/routes.js";
import { RPC_PROTOCOL, VERSION, VERSION_HEADER } from "../protocol/version.js";
import { JsonText, type Handlers, type JsonRoute, type Reply, type StreamHandlers, type StreamRoute } from "./context.js";
import type { SseRequest } from "./sse.js";
import { Gate } from "./gate.js";
import { parseTarget, type Target } from "./target.js";
import { readPlainRequest, type PlainRequest } from "./plain-request.js";

/** The longest RPC line taken, in bytes: a request body's limit and room for its envelope. */
const MAX_RPC_LINE = MAX_BODY_BYTES + 4096;

/**
 * Backpressure on an RPC connection: its calls are not read while this many are in flight,
 * or while more than RPC_MAX_UNSENT bytes of its replies wait to be sent (a client that
 * pipelines calls and does not read the replies). So what one connection holds is bounded
 * by about RPC_MAX_UNSENT plus RPC_MAX_IN_FLIGHT replies, plus the socket's read buffer.
 */
export const RPC_MAX_IN_FLIGHT = 32;
export const RPC_MAX_UNSENT = 1024 * 1024;

/**
 * Calls whose reply may be a big list (up to the 1 MiB summary bound): each costs the main
 * thread milliseconds of reading, shaping and serialising. They take turns daemon-wide
 * (HEAVY_CALLS_AT_ONCE, each next one on a new turn of the event loop: ./gate.ts), and an
 * RPC connection has one in flight at a time, so a client that pipelines lists and does not
 * read holds about RPC_MAX_UNSENT plus one reply, not RPC_MAX_IN_FLIGHT replies.
 */
export const HEAVY_CALLS: ReadonlySet<RouteName> = new Set<RouteName>(["jobsList", "tasksList", "taskEventsList", "jobsLogs", "boardsList", "schedulesList", "stats", "digestPreview"]);
export const HEAVY_CALLS_AT_ONCE = 1;

/**
 * A log line for events that may come in floods: `note()` counts one; the first is logged
 * at once, the others at most once per interval with their count (LogTally), the last ones
 * by a timer.
 */
function rateLimited(intervalMs: number, now: () => number, line: (count: number) => void): () => void {
  const tally = new LogTally(intervalMs);
  let timer: NodeJS.Timeout | null = null;
  const flush = (n: number) => {
    if (n > 0) line(n);
    const wait = tally.waitMs(now());
    if (wait !== null && timer === null) {
      timer = setTimeout(() => {
        timer = null;
        flush(tally.due(now()));
      }, wait);
      timer.unref();
    }
  };
  return () => flush(tally.note(now()));
}

/** How many connections the daemon holds at once, and how long an idle one is kept. */
export interface ConnectionLimits {
  /** Connections open at once (HTTP, streams and RPC alike); one more is answered 503 and closed. */
  maxConnections: number;
  /** An RPC connection with no call in flight and nothing received for this long is closed. */
  rpcIdleMs: number;
  /** An HTTP keep-alive connection is closed this long after its last reply. */
  keepAliveMs: number;
  /** Refused connections and timed-out requests are logged at most once per this interval, with their count. */
  refusedLogIntervalMs: number;
  /** A request's head must arrive within this (a silent connection's too), ... */
  headersTimeoutMs: number;
  /** ... and the whole request, body included, within this; else 408 and closed. */
  requestTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 512,
  rpcIdleMs: 60_000,
  keepAliveMs: 5_000,
  refusedLogIntervalMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
};

/**
 * Counts events that are logged rate-limited: the first at once, then at most one line per
 * interval saying how many happened since the last line. The caller gives the time.
 */
export class LogTally {
  private pending = 0;
  private lastAt: number | null = null;

  constructor(private readonly intervalMs: number) {}

  /** Counts one event at `now`; returns how many to log now (0: not yet, see waitMs). */
  note(now: number): number {
    this.pending++;
    return this.due(now);
  }

  /** How many to log at `now`: those counted since the last line, once the interval has passed. */
  due(now: number): number {
    if (this.pending === 0 || (this.lastAt !== null && now - this.lastAt < this.intervalMs)) return 0;
    const n = this.pending;
    this.pending = 0;
    this.lastAt = now;
    return n;
  }

  /** How long until what is counted may be logged (null: nothing waits). */
  waitMs(now: number): number | null {
    if (this.pending === 0) return null;
    return this.lastAt === null ? 0 : Math.max(0, this.intervalMs - (now - this.lastAt));
  }
}

interface CompiledRoute {
  name: RouteName;
  method: Method;
  regex: RegExp;
  params: string[];
}

const compiled: CompiledRoute[] = (Object.entries(routes) as [RouteName, (typeof routes)[RouteName]][]).map(([name, r]) => {
  const params: string[] = [];
  const pattern = r.path.replace(/:(\w+)/g, (_, p: string) => {
    params.push(p);
    return "([^/]+)";
  });
  return { name, method: r.method, regex: new RegExp(`^${pattern}$`), params };
});

type Match = { route: CompiledRoute; params: Record<string, string> } | { allowed: Method[] } | null;

/** The paths of the routes without parameters ("/jobs", "/health"): their matches are kept (matchOf). */
const STATIC_PATHS: ReadonlySet<string> = new Set(Object.values(routes).filter((r) => !r.path.includes(":")).map((r) => r.path));
const staticMatches = new Map<string, Match>();
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * match(), kept for a route path without parameters: the same answer for the same method and
 * path, without running every route's pattern on each request. Bounded: only the routes'
 * own paths are kept, times the methods the HTTP parser lets through.
 */
function matchOf(method: string, pathname: string): Match {
  if (!STATIC_PATHS.has(pathname)) return match(method, pathname);
  const key = `${method} ${pathname}`;
  let found = staticMatches.get(key);
  if (found === undefined) {
    found = match(method, pathname);
    if (found && "route" in found) found = { route: found.route, params: NO_PARAMS };
    staticMatches.set(key, found);
  }
  return found;
}

function match(method: string, pathname: string): Match {
  const allowed: Method[] = [];
  for (const route of compiled) {
    const m = route.regex.exec(pathname);
    if (!m) continue;
    if (route.method !== method) {
      allowed.push(route.method);
      continue;
    }
    const params: Record<string, string> = {};
    route.params.forEach((p, i) => {
      params[p] = decodeURIComponent(m[i + 1]!);
    });
    return { route, params };
  }
  return allowed.length ? { allowed } : null;
}

/** How much of a refused request's unread body is read and dropped, and for how long, before its connection is cut. */
const LINGER = { bytes: 2 * MAX_BODY_BYTES, ms: 5_000 };

/**
 * Lingering close (as nginx's lingering_close): reads and drops the rest of a refused
 * request's body so that its sender gets the answer rather than a reset; past LINGER's bytes
 * or time the connection is destroyed, so a body that never ends costs nothing more.
 */
function lingerUnread(req: IncomingMessage): void {
  let dropped = 0;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, LINGER.ms);
  timer.unref();
  req.on("data", (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER.bytes) cut();
  });
  req.once("end", () => clearTimeout(timer));
  req.once("close", () => clearTimeout(timer));
  req.resume();
}

let dateSecond = -1;
let dateText = "";
/** The Date header's value (as node writes it), made once per second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/** A request body's JSON: an empty (or all-whitespace) body is {}. */
function bodyOf(bytes: Buffer): unknown {
  const text = bytes.toString("utf8");
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TeamworkError("invalid_input", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** A JSON body as a route's fields: it must be an object. */
function bodyFields(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new TeamworkError("invalid_input", "request body must be a JSON object");
  return body as Record<string, unknown>;
}

/** A route's input: its fields and its path's parameters, which the fields must not repeat (no parameters: the fields as they are; validation copies what it keeps). */
function withParams(route: CompiledRoute, fields: Record<string, unknown>, params: Record<string, string>): Record<string, unknown> {
  for (const name of route.params) {
    if (Object.hasOwn(fields, name)) throw new TeamworkError("invalid_input", `"${name}" is given in the path; do not repeat it`);
  }
  return route.params.length ? { ...fields, ...params } : fields;
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      reject(new TeamworkError("payload_too_large", `request body is larger than ${MAX_BODY_BYTES} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new TeamworkError("payload_too_large", `request body is larger than ${MAX_BODY_BYTES} bytes`));
        req.removeAllListeners("data");
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return;
      try {
        // One chunk (a small body's usual case) is decoded as it is, not copied first.
        resolve(bodyOf(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
      } catch (err) {
        reject(err);
      }
    });
    // The client hung up mid-body: nobody will read the answer, but it is their fault, not ours.
    req.on("error", () => reject(new TeamworkError("invalid_input", "the connection closed before the request body was complete")));
  });
}

/**
 * The store said no (locked by another process, disk full, damaged): that is not a bug in the
 * request or in us, and nothing was stored; protocol/errors.ts says what each kind answers.
 */
function storeFault(err: unknown, read: boolean): unknown {
  // `read`: a GET asked for nothing to change, so a write's unknown outcome is not its concern.
  return err instanceof StoreError ? storeFailure(err, { read }) : err;
}

function readQuery(url: Target): Record<string, string> {
  // No prototype: "__proto__" is a parameter like any other (and refused as unknown).
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (url.search === "") return out;
  for (const [k, v] of url.query()) {
    if (Object.hasOwn(out, k)) throw new TeamworkError("invalid_input", `query parameter "${k}" is given more than once`);
    out[k] = v;
  }
  return out;
}

/** An error as the API answers it: its status and JSON body; logged once here. */
function errorReply(err: unknown, log: Logger, where: Record<string, unknown>, read = false): { status: number; body: ErrorBody } {
  err = storeFault(err, read);
  if (err instanceof TeamworkError) {
    const status = HTTP_STATUS[err.code];
    log.warn("request.rejected", { ...where, status, error: err.message });
    return { status, body: { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } } };
  }
  log.error("request.failed", { ...where, error: (err as Error)?.stack ?? String(err) });
  return { status: 500, body: { error: { code: "internal", message: `internal error: ${(err as Error)?.message ?? String(err)}` } } };
}

export function createApiServer(opts: {
  handlers: Handlers;
  streams: StreamHandlers;
  log: Logger;
  limits?: Partial<ConnectionLimits>;
  now?: () => number;
  /** Called for each request answered 408 (for /metrics). */
  onRequestTimeout?: () => void;
}): {
  server: Server;
  closeStreams(): void;
  /** Closes the plain lane's idle connections (node's server closes its own idle ones as it closes). */
  closeIdleConnections(): void;
  /** Closes every connection, HTTP and RPC (at shutdown, after the engine stopped). */
  closeAllConnections(): void;
  /** Connections open now (under the cap; refused ones are not counted). */
  connections(): number;
} {
  const { handlers, streams, log } = opts;
  const limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits };
  const now = opts.now ?? Date.now;
  const openStreams = new Set<() => void>();
  const rpcSockets = new Set<Socket>();

  // The connection cap. A connection over it is still read up to its request head (so that
  // the client hears why, not a bare close), then answered 503 and closed; it is not counted.
  let openConnections = 0;
  const overCap = new WeakSet<Socket>();
  const logRefused = rateLimited(limits.refusedLogIntervalMs, now, (n) =>
    log.warn("connections.refused", { refused: n, open: openConnections, limit: limits.maxConnections, note: "too many connections; raise connections.max or find the client that holds them" }),
  );
  const logNotReading = rateLimited(limits.refusedLogIntervalMs, now, (n) =>
    log.info("rpc.backpressure", { connections: n, note: `a client is not reading its replies (over ${RPC_MAX_UNSENT} bytes unsent): its calls are not read until it does` }),
  );
  const logTimedOut = rateLimited(limits.refusedLogIntervalMs, now, (n) =>
    log.warn("request.timed_out", { requests: n, headersTimeoutMs: limits.headersTimeoutMs, requestTimeoutMs: limits.requestTimeoutMs, note: "answered 408 and closed: the request did not arrive whole in time" }),
  );
  const tooMany = (): string =>
    JSON.stringify({
      error: {
        code: "unavailable",
        message: `too many connections: the daemon serves at most ${limits.maxConnections} at once`,
        hint: "try again shortly; if it lasts, find the client holding connections open, or raise connections.max (docs/operations.md)",
        details: { limit: limits.maxConnections },
      },
    });
  /** The answer to a connection over the cap, as raw HTTP (it may be an upgrade request). */
  const refuseOverCap = (socket: Socket) => {
    const body = tooMany();
    socket.end(`HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${VERSION_HEADER}: ${VERSION}\r\n\r\n${body}`);
    socket.destroySoon();
  };

  /** A request that did not arrive in time: 408 and closed (destroyed at once when a reply was begun), counted and logged. */
  const timedOut = (socket: Socket, replyBegun = false) => {
    opts.onRequestTimeout?.();
    logTimedOut();
    if (!socket.writable || replyBegun) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({
      error: {
        code: "invalid_input",
        message: `the request did not arrive in time (its head within ${limits.headersTimeoutMs} ms, all of it within ${limits.requestTimeoutMs} ms)`,
      },
    });
    socket.end(`HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.destroySoon();
  };

  const heavy = new Gate(HEAVY_CALLS_AT_ONCE);
  /**
   * Validates a JSON route's input (path parameters included) and calls its handler (heavy
   * ones in turn). Not async: a call that is not heavy costs no wrapper promise and closure
   * (the callers await it inside their try, so an input refused by a throw is answered as a
   * rejection would be).
   */
  const invoke = (name: JsonRoute, fields: Record<string, unknown>): Promise<Reply<unknown>> => {
    if (HEAVY_CALLS.has(name)) return heavy.run<Reply<unknown>>(() => handlers[name](routes[name].input(fields, "") as never));
    return handlers[name](routes[name].input(fields, "") as never);
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    // A body serialised already (a long list, routes/slices.ts) is written as it is.
    const json = body instanceof JsonText ? body : null;
    const text = json ? "" : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": json ? json.byteLength : Buffer.byteLength(text), [VERSION_HEADER]: VERSION });
    json?.writeTo(res);
    res.end(text);
  };

  const sendError = (req: IncomingMessage, res: ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}) => {
    const { status, body } = errorReply(err, log, { method: req.method, path: req.url }, req.method === "GET");
    for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
    // The body may not have been read (413, 404 before reading): the client is likely still
    // sending it. Closing now would reset the connection under it (EPIPE) before it reads the
    // answer, so the rest is read and dropped, within bounds (lingerUnread), and the
    // connection kept; a complete request's connection is closed instead.
    if (!req.complete) lingerUnread(req);
    else res.setHeader("connection", "close");
    send(res, status, body);
  };

  /** What a stream handler gets (src/daemon/sse.ts serves the stream). */
  const sseRequest = (req: IncomingMessage, res: ServerResponse, query: Record<string, unknown>): SseRequest => {
    const header = req.headers["last-event-id"];
    const fromQuery = typeof query.lastEventId === "string" ? query.lastEventId : null;
    return {
      req,
      res,
      lastEventId: typeof header === "string" && header !== "" ? header : fromQuery,
      track(close) {
        openStreams.add(close);
        return () => openStreams.delete(close);
      },
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let url: Target;
    try {
      url = parseTarget(req.url ?? "/");
    } catch {
      return sendError(req, res, new TeamworkError("invalid_input", "malformed request URL"));
    }
    let found;
    try {
      found = matchOf(req.method ?? "GET", url.pathname);
    } catch {
      return sendError(req, res, new TeamworkError("invalid_input", "malformed percent-encoding in the path"));
    }
    if (!found) return sendError(req, res, new TeamworkError("not_found", `unknown route ${req.method} ${url.pathname}`, "see docs/protocol.md for the routes"));
    if ("allowed" in found) {
      return sendError(req, res, new TeamworkError("method_not_allowed", `${req.method} is not allowed on ${url.pathname}; use ${found.allowed.join(" or ")}`), { allow: found.allowed.join(", ") });
    }
    const { route, params } = found;
    try {
      let fields: Record<string, unknown>;
      if (route.method === "GET" || route.method === "DELETE") {
        fields = readQuery(url);
      } else {
        if (url.search) throw new TeamworkError("invalid_input", `${route.method} ${url.pathname} takes its input as a JSON body, not a query string`);
        const type = req.headers["content-type"];
        if (type && !/^application\/json\b/i.test(type)) {
          throw new TeamworkError("unsupported_media_type", `request body must be application/json, got ${type}`);
        }
        fields = bodyFields(await readBody(req));
      }
      const input = withParams(route, fields, params);
      // Streams: events (SSE), or a file's bytes (daemon/bytes.ts).
      if (SSE_ROUTES.has(route.name) || BYTE_ROUTES.has(route.name)) {
        const { lastEventId, ...rest } = input;
        const streamInput = routes[route.name].input(rest, "") as never;
        await streams[route.name as StreamRoute](streamInput, sseRequest(req, res, { lastEventId }));
        if (!res.writableEnded) res.end();
        return;
      }
      const reply = await invoke(route.name as JsonRoute, input);
      if (reply.contentType) {
        const text = String(reply.body);
        res.writeHead(reply.status, { "content-type": reply.contentType, "content-length": Buffer.byteLength(text), [VERSION_HEADER]: VERSION });
        res.end(text);
      } else send(res, reply.status, reply.body);
    } catch (err) {
      sendError(req, res, err);
    }
  };

  // Node checks the two timeouts every connectionsCheckingInterval (30 s by default, which
  // let a silent connection live 30-45 s past a 10 s limit): here at most a second late.
  const checkEveryMs = Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4)));
  const serverOptions = { requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, keepAliveTimeout: limits.keepAliveMs, connectionsCheckingInterval: checkEveryMs };
  const server = createServer(serverOptions, (req, res) => {
    if (overCap.has(req.socket)) {
      req.resume();
      res.setHeader("connection", "close");
      send(res, 503, JSON.parse(tooMany()));
      return;
    }
    handle(req, res).catch((err) => {
      log.error("request.crashed", { error: (err as Error)?.stack ?? String(err) });
      try {
        if (!res.headersSent) send(res, 500, { error: { code: "internal", message: "internal error" } });
        else res.end();
      } catch {
        res.destroy();
      }
    });
  });
  // node's HTTP server's own connection listener: a connection reaches it through ours, which
  // judges it first (the cap) and serves it in the plain lane while it can (plainLane).
  const connectionListeners = server.listeners("connection") as ((socket: Socket) => void)[];
  if (connectionListeners.length !== 1) throw new Error(`node's HTTP server has ${connectionListeners.length} connection listeners, not its one`);
  const toNode = (socket: Socket) => connectionListeners[0]!.call(server, socket);
  server.removeAllListeners("connection");
  server.on("connection", (socket: Socket) => {
    if (openConnections >= limits.maxConnections) {
      overCap.add(socket);
      logRefused();
      toNode(socket);
      return;
    }
    openConnections++;
    socket.once("close", () => openConnections--);
    plainLane(socket);
  });

  /** Connections in the plain lane (not yet handed to node's HTTP server). */
  const plainSockets = new Set<Socket>();
  /** Of those, the ones with no request in flight (closed when the server closes, as node closes its idle ones). */
  const idlePlain = new Set<Socket>();

  /** The route a plain request is answered on in the plain lane, or null: node's HTTP server answers it. */
  const plainRoute = (p: PlainRequest): { url: Target; route: CompiledRoute; params: Record<string, string> } | null => {
    let url: Target;
    let found: Match;
    try {
      url = parseTarget(p.target);
      found = matchOf(p.method, url.pathname);
    } catch {
      return null;
    }
    // 404, 405, streams and long lists: node's; and the refusals node makes before reading
    // the body (a query on a POST, a content type that is not JSON), which keep the
    // connection where the others close it.
    if (!found || !("route" in found)) return null;
    const { route, params } = found;
    if (SSE_ROUTES.has(route.name) || BYTE_ROUTES.has(route.name) || HEAVY_CALLS.has(route.name)) return null;
    if (route.method === "POST" || route.method === "PATCH") {
      if (url.search) return null;
      if (p.contentType !== undefined && !/^application\/json\b/i.test(p.contentType)) return null;
    }
    return { url, route, params };
  };

  /**
   * The plain lane: a connection's requests read and answered here, without node's HTTP
   * server, for as long as each is a plain request (./plain-request.ts) on a JSON route that
   * answers it as handle() would. The first that is not — or a request not yet whole in the
   * bytes at hand — hands the connection to node's HTTP server for good, with those bytes.
   * The lane keeps node's rules for what it serves: the reply's headers, keep-alive (closed
   * keepAliveMs + 1 s after the last reply, as node does), a first request due within
   * headersTimeoutMs (else 408), "connection: close" after an error and when asked, one
   * request at a time in order (a pipelined one waits, and the connection is not read on).
   */
  const plainLane = (socket: Socket) => {
    plainSockets.add(socket);
    idlePlain.add(socket);
    let buffered: Buffer | null = null;
    let busy = false;
    let served = 0;
    // The lazy idle timer, as RPC's: a request does not clear and set a timer; the one timer,
    // when it fires, closes the connection or waits again for what is left.
    let idleTimer: NodeJS.Timeout | null = null;
    /** When the idle timer fires (performance.now()). */
    let idleDue = 0;
    /** When the connection last went idle (performance.now()), or null while a request is in hand. */
    let quietSince: number | null = null;
    /** How long it may stay idle: its first request's head is due within headersTimeoutMs; then keep-alive, with node's extra second. */
    const idleLimit = () => (served === 0 ? limits.headersTimeoutMs : limits.keepAliveMs + 1_000);
    const waitIdle = (ms: number) => {
      idleDue = performance.now() + ms;
      idleTimer = setTimeout(() => {
        idleTimer = null;
        if (quietSince === null || socket.destroyed) return;
        const left = quietSince + idleLimit() - performance.now();
        if (left > 0) return waitIdle(left);
        if (served === 0) return timedOut(socket);
        socket.destroy();
      }, Math.ceil(ms));
      idleTimer.unref();
    };
    const armIdle = () => {
      quietSince = performance.now();
      idlePlain.add(socket);
      // Set again only when due earlier than it fires (after the first request: keep-alive is shorter than the head's limit).
      if (idleTimer && idleDue <= quietSince + idleLimit()) return;
      if (idleTimer) clearTimeout(idleTimer);
      waitIdle(idleLimit());
    };
    const leave = () => {
      plainSockets.delete(socket);
      idlePlain.delete(socket);
      quietSince = null;
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = null;
      socket.removeListener("data", onData);
      socket.removeListener("end", onEnd);
      socket.removeListener("error", onError);
      socket.removeListener("close", leave);
    };
    const handOver = () => {
      const bytes = buffered;
      buffered = null;
      leave();
      toNode(socket);
      if (socket.isPaused()) socket.resume();
      // node's listener reads them now, before anything the socket reads next.
      if (bytes) socket.emit("data", bytes);
    };
    const next = () => {
      if (busy || buffered === null || socket.destroyed) return;
      // Replies not yet taken by a client that pipelines: read on once they are.
      if (socket.writableNeedDrain) return void socket.once("drain", next);
      const p = readPlainRequest(buffered, MAX_BODY_BYTES);
      const routed = p && plainRoute(p);
      // Bytes after a Connection: close request: node's parser refuses them (400) rather than answering the request.
      if (!p || !routed || (p.close && p.size < buffered.length)) return handOver();
      buffered = p.size < buffered.length ? buffered.subarray(p.size) : null;
      busy = true;
      quietSince = null;
      idlePlain.delete(socket);
      void answerPlain(socket, p, routed.url, routed.route, routed.params).then(() => {
        busy = false;
        served++;
        // Closed, or closing after its reply (an error, or Connection: close): nothing more is read.
        if (socket.destroyed || socket.writableEnded || !plainSockets.has(socket)) return;
        if (buffered) {
          if (socket.isPaused()) socket.resume();
          next();
        } else armIdle();
      });
    };
    const onData = (chunk: Buffer) => {
      if (socket.writableEnded) return;
      buffered = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
      if (!busy) next();
      else if (!socket.isPaused()) socket.pause();
    };
    // The client is done sending: node's server ends the connection at once.
    const onEnd = () => {
      leave();
      socket.end();
    };
    const onError = () => socket.destroy();
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.on("close", leave);
    armIdle();
  };

  /**
   * A reply on a plain-lane connection: the head node's ServerResponse writes for it (its
   * headers in node's order), then the body. `close`: "ours" after an error (sendError's
   * header, first), "asked" when the client sent Connection: close (node's, after the date).
   */
  const writePlain = (socket: Socket, status: number, body: string | JsonText<unknown>, opts: { contentType?: string; close: "ours" | "asked" | null }) => {
    if (!socket.writable) return;
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    const connection = opts.close === "asked" ? "Connection: close\r\n" : opts.close === "ours" ? "" : `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(limits.keepAliveMs / 1000)}\r\n`;
    const head =
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "unknown"}\r\n${opts.close === "ours" ? "connection: close\r\n" : ""}` +
      `content-type: ${opts.contentType ?? "application/json; charset=utf-8"}\r\ncontent-length: ${length}\r\n${VERSION_HEADER}: ${VERSION}\r\n` +
      `Date: ${httpDate()}\r\n${connection}\r\n`;
    if (typeof body === "string") socket.write(head + body);
    else {
      socket.cork();
      socket.write(head);
      body.writeTo(socket);
      socket.uncork();
    }
    if (opts.close) {
      // As node's destroySoon: the reply goes out, then the connection is closed.
      socket.end();
      socket.once("finish", () => socket.destroy());
    }
  };

  /**
   * A plain request answered as handle() answers it. An error thrown before handle() would
   * have read the whole request (a GET's query or input refused at once) keeps the
   * connection, as there; one after it closes the connection.
   */
  const answerPlain = async (socket: Socket, p: PlainRequest, url: Target, route: CompiledRoute, params: Record<string, string>): Promise<void> => {
    let whole = false;
    try {
      let fields: Record<string, unknown>;
      if (route.method === "GET" || route.method === "DELETE") fields = readQuery(url);
      else {
        whole = true;
        fields = bodyFields(bodyOf(p.body));
      }
      const pending = invoke(route.name as JsonRoute, withParams(route, fields, params));
      whole = true;
      const reply = await pending;
      const close = p.close ? "asked" : null;
      if (reply.contentType) writePlain(socket, reply.status, String(reply.body), { contentType: reply.contentType, close });
      else writePlain(socket, reply.status, reply.body instanceof JsonText ? reply.body : JSON.stringify(reply.body), { close });
    } catch (err) {
      try {
        const { status, body } = errorReply(err, log, { method: p.method, path: p.target }, p.method === "GET");
        writePlain(socket, status, JSON.stringify(body), { close: whole ? "ours" : p.close ? "asked" : null });
      } catch (crash) {
        log.error("request.crashed", { error: (crash as Error)?.stack ?? String(crash) });
        socket.destroy();
      }
    }
  };
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (overCap.has(socket)) return refuseOverCap(socket);
    if (req.url !== "/rpc" || req.method !== "GET" || String(req.headers.upgrade ?? "").toLowerCase() !== RPC_PROTOCOL) {
      log.warn("request.rejected", { method: req.method, path: req.url, status: 400, error: "unknown upgrade" });
      const body = JSON.stringify({ error: { code: "invalid_input", message: `only GET /rpc upgrades, to ${RPC_PROTOCOL}` } });
      socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${RPC_PROTOCOL}\r\nconnection: Upgrade\r\n${VERSION_HEADER}: ${VERSION}\r\n\r\n`);
    serveRpc(socket, head);
  });

  /**
   * One JSON object per line: {"id", "call", "input"} in, {"id", "status", "body"} out (and
   * "contentType" when the body is text). Calls on one connection may overlap; replies say
   * which call they answer. A line that is not such an object gets a 400 with id null, and
   * the connection is closed (nothing after it can be trusted to be framed right).
   */
  const serveRpc = (socket: Socket, head: Buffer) => {
    rpcSockets.add(socket);
    socket.setNoDelay(true);
    const lines = new LineDecoder(MAX_RPC_LINE);
    let closing = false;
    let ended = false;
    let inFlight = 0;
    /** Heavy calls in flight (HEAVY_CALLS): one at a time per connection. */
    let heavyInFlight = 0;
    /** Lines received and not yet started (backpressure), from `next` on. */
    let queued: string[] = [];
    let next = 0;
    /** Over RPC_MAX_UNSENT since the last look (logged once per such stall). */
    let stalled = false;
    const reply = (line: object, body?: JsonText<unknown>) => {
      if (socket.destroyed) return;
      if (!body) return void socket.write(JSON.stringify(line) + "\n");
      // The line with a body serialised already: its head, the body's pieces, its end, in one writev.
      socket.cork();
      socket.write(`${JSON.stringify(line).slice(0, -1)},"body":`);
      body.writeTo(socket);
      socket.write("}\n");
      socket.uncork();
    };
    const blocked = () => inFlight >= RPC_MAX_IN_FLIGHT || socket.writableLength > RPC_MAX_UNSENT;
    /** Starts what is queued while the connection may take more, and reads from it only then. */
    const pump = () => {
      while (next < queued.length && !closing && !blocked()) {
        // Taken before it starts: a call that ends at once calls pump() again from inside.
        if (!onLine(queued[next++]!)) {
          next--; // a heavy call waits for the one in flight (nothing was started)
          break;
        }
      }
      if (next >= queued.length) {
        // Emptied in place, not replaced: one-by-one calls each went through a new array.
        if (next > 0) queued.length = 0;
        next = 0;
      }
      if (closing) queued = [];
      const unsentOver = socket.writableLength > RPC_MAX_UNSENT;
      if (unsentOver && !stalled) logNotReading();
      stalled = unsentOver;
      const waiting = queued.length > 0 || blocked();
      if (waiting && !socket.isPaused()) socket.pause();
      else if (!waiting && socket.isPaused() && !socket.destroyed) socket.resume();
      if (ended && inFlight === 0 && queued.length === 0 && !socket.writableEnded) socket.end();
      else if (!ended && !closing && inFlight === 0 && queued.length === 0) armIdle();
    };
    socket.on("drain", pump);
    // Idle: no call in flight and nothing received for rpcIdleMs. The connection is closed
    // with a last frame saying so; whatever arrives after it is not read, so a client that
    // sent a call meanwhile may send it again on a new connection.
    // The lazy idle timer: a call does not clear and set a timer (one-by-one calls spent about
    // 3 µs each on it, and its garbage); it notes when the connection went quiet, and the one
    // timer, when it fires, closes the connection or waits again for what is left.
    let idleTimer: NodeJS.Timeout | null = null;
    /** When the connection last went quiet (performance.now()), or null while busy. */
    let quietSince: number | null = null;
    const quiet = () => {
      quietSince = null;
    };
    const stopIdle = () => {
      quietSince = null;
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = null;
    };
    const waitIdle = (ms: number) => {
      idleTimer = setTimeout(() => {
        idleTimer = null;
        if (closing || inFlight > 0 || queued.length > 0 || quietSince === null) return;
        const left = quietSince + limits.rpcIdleMs - performance.now();
        if (left > 0) return waitIdle(left);
        closing = true;
        reply({ id: null, status: 503, closing: "idle", body: { error: { code: "unavailable", message: `closed an RPC connection idle for ${limits.rpcIdleMs} ms` } } });
        socket.end();
      }, Math.ceil(ms));
      idleTimer.unref();
    };
    const armIdle = () => {
      if (closing || inFlight > 0 || queued.length > 0) return;
      quietSince = performance.now();
      if (!idleTimer) waitIdle(limits.rpcIdleMs);
    };
    const fail = (id: unknown, err: unknown, read = false) => {
      const { status, body } = errorReply(err, log, { rpc: true }, read);
      reply({ id: typeof id === "number" || typeof id === "string" ? id : null, status, body });
    };
    const refuse = (err: TeamworkError) => {
      closing = true;
      fail(null, err);
      socket.end();
    };
    /** Starts the call on `line`; false when it is heavy and must wait for this connection's heavy one (unless `force`). */
    const onLine = (line: string, force = false): boolean => {
      if (line.trim() === "") return true;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch (err) {
        refuse(new TeamworkError("invalid_input", `RPC line is not valid JSON: ${(err as Error).message}`));
        return true;
      }
      if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
        refuse(new TeamworkError("invalid_input", "an RPC line must be a JSON object"));
        return true;
      }
      const { id, call, input } = msg as { id?: unknown; call?: unknown; input?: unknown };
      if (!(typeof id === "number" && Number.isSafeInteger(id)) && !(typeof id === "string" && id.length <= 64)) {
        refuse(new TeamworkError("invalid_input", `"id" must be an integer or a short string`));
        return true;
      }
      const isHeavy = typeof call === "string" && HEAVY_CALLS.has(call as RouteName);
      if (isHeavy && heavyInFlight > 0 && !force) return false;
      inFlight++;
      if (isHeavy) heavyInFlight++;
      void (async () => {
        try {
          if (typeof call !== "string" || !Object.hasOwn(routes, call)) {
            throw new TeamworkError("not_found", `unknown call ${JSON.stringify(call)}`, "see docs/protocol.md for the routes");
          }
          if (SSE_ROUTES.has(call as RouteName) || BYTE_ROUTES.has(call as RouteName)) throw new TeamworkError("invalid_input", `${call} is a stream: open it over HTTP (GET ${routes[call as RouteName].path})`);
          if (input !== undefined && (typeof input !== "object" || input === null || Array.isArray(input))) throw new TeamworkError("invalid_input", `"input" must be a JSON object`);
          const r = await invoke(call as JsonRoute, (input ?? {}) as Record<string, unknown>);
          // A body serialised already (a long list, routes/slices.ts) goes in as it is.
          if (r.body instanceof JsonText) reply({ id, status: r.status }, r.body);
          else reply(r.contentType ? { id, status: r.status, contentType: r.contentType, body: String(r.body) } : { id, status: r.status, body: r.body });
        } catch (err) {
          fail(id, err, typeof call === "string" && Object.hasOwn(routes, call) && routes[call as RouteName].method === "GET");
        } finally {
          inFlight--;
          if (isHeavy) heavyInFlight--;
          pump();
        }
      })();
      return true;
    };
    const onData = (chunk: Buffer) => {
      if (closing) return;
      quiet();
      const got = lines.push(chunk);
      // Nothing waits (the common case): the decoder's own list is the queue, not copied.
      if (next >= queued.length) {
        queued = got;
        next = 0;
      } else for (const line of got) queued.push(line);
      pump();
      if (!closing && lines.tooLong) {
        // Whatever came before the long line is answered; nothing after it is read.
        queued = queued.slice(next);
        next = 0;
        while (queued.length > 0 && !closing) onLine(queued.shift()!, true);
        refuse(new TeamworkError("payload_too_large", `RPC line is longer than ${MAX_RPC_LINE} bytes`));
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      stopIdle();
      rpcSockets.delete(socket);
    });
    // The client said all it will say: answer what is in flight and queued, then close (allowHalfOpen).
    socket.on("end", () => {
      ended = true;
      stopIdle();
      pump();
    });
    if (head.length) onData(head);
    else armIdle();
  };

  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      timedOut(socket, response?.headersSent === true);
      return;
    }
    log.warn("request.malformed", { error: err.message });
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n" + JSON.stringify({ error: { code: "invalid_input", message: "malformed HTTP request" } }));
    else socket.destroy();
  });
  return {
    server,
    closeStreams() {
      for (const close of [...openStreams]) close();
    },
    closeIdleConnections() {
      for (const s of idlePlain) s.destroy();
    },
    closeAllConnections() {
      server.closeAllConnections();
      for (const s of rpcSockets) s.destroy();
      for (const s of plainSockets) s.destroy();
    },
    connections: () => openConnections,
  };
}
