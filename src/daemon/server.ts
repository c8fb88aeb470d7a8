// The socket API's HTTP layer: match a route, read and validate its input, call its
// handler, write the reply. Only this file writes HTTP. Bad input of any kind becomes a
// 4xx JSON error and a log line; nothing a client sends can crash the daemon.
//
// The same routes are also served as RPC: a connection that asks `GET /rpc` with
// `Upgrade: teamwork-rpc` switches to one JSON object per line each way (docs/protocol.md).
// That is what the CLI and the client library use: a call costs a fraction of an HTTP
// request on both sides. Streams stay on HTTP (SSE).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { TeamworkError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import { HTTP_STATUS, type ErrorBody } from "../protocol/errors.js";
import { MAX_BODY_BYTES, routes, SSE_ROUTES, type Method, type RouteName } from "../protocol/routes.js";
import { RPC_PROTOCOL, VERSION, VERSION_HEADER } from "../protocol/version.js";
import type { Handlers, JsonRoute, SseStream, StreamHandlers, StreamRoute } from "./context.js";

/** The longest RPC line taken: a request body's limit and room for its envelope. */
const MAX_RPC_LINE = MAX_BODY_BYTES + 4096;

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

function match(method: string, pathname: string): { route: CompiledRoute; params: Record<string, string> } | { allowed: Method[] } | null {
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
      const text = Buffer.concat(chunks).toString("utf8");
      if (text.trim() === "") return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new TeamworkError("invalid_input", `request body is not valid JSON: ${(err as Error).message}`));
      }
    });
    // The client hung up mid-body: nobody will read the answer, but it is their fault, not ours.
    req.on("error", () => reject(new TeamworkError("invalid_input", "the connection closed before the request body was complete")));
  });
}

/**
 * The database said no (locked by another process, disk full, I/O error): that is not a bug
 * in the request or in us, and it says nothing was stored, so it is a 503 with the reason.
 */
function storeFault(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return err;
  const reason = code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")
    ? "the database is locked by another process"
    : code.startsWith("SQLITE_FULL")
      ? "the disk is full"
      : code.startsWith("SQLITE_IOERR")
        ? "the disk reported an I/O error"
        : code.startsWith("SQLITE_READONLY")
          ? "the database is read-only"
          : `the database failed (${code})`;
  return new TeamworkError("unavailable", `${reason}; nothing was changed: ${(err as Error).message}`, "try again once the cause is gone; see `teamwork daemon logs`");
}

function readQuery(url: URL): Record<string, string> {
  // No prototype: "__proto__" is a parameter like any other (and refused as unknown).
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of url.searchParams) {
    if (Object.hasOwn(out, k)) throw new TeamworkError("invalid_input", `query parameter "${k}" is given more than once`);
    out[k] = v;
  }
  return out;
}

/** An error as the API answers it: its status and JSON body; logged once here. */
function errorReply(err: unknown, log: Logger, where: Record<string, unknown>): { status: number; body: ErrorBody } {
  err = storeFault(err);
  if (err instanceof TeamworkError) {
    const status = HTTP_STATUS[err.code];
    log.warn("request.rejected", { ...where, status, error: err.message });
    return { status, body: { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } } };
  }
  log.error("request.failed", { ...where, error: (err as Error)?.stack ?? String(err) });
  return { status: 500, body: { error: { code: "internal", message: `internal error: ${(err as Error)?.message ?? String(err)}` } } };
}

export function createApiServer(opts: { handlers: Handlers; streams: StreamHandlers; log: Logger }): {
  server: Server;
  closeStreams(): void;
  /** Closes every connection, HTTP and RPC (at shutdown, after the engine stopped). */
  closeAllConnections(): void;
} {
  const { handlers, streams, log } = opts;
  const openStreams = new Set<() => void>();
  const rpcSockets = new Set<Socket>();

  /** Validates a JSON route's input (path parameters included) and calls its handler. */
  const invoke = async (name: JsonRoute, fields: Record<string, unknown>) => handlers[name](routes[name].input(fields, "") as never);

  const send = (res: ServerResponse, status: number, body: unknown) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), [VERSION_HEADER]: VERSION });
    res.end(text);
  };

  const sendError = (req: IncomingMessage, res: ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}) => {
    const { status, body } = errorReply(err, log, { method: req.method, path: req.url });
    for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
    // The body may not have been read (413, 404 before reading): discard it, so its bytes are
    // not taken for a next request, and close rather than reuse the connection.
    if (!req.complete) req.resume();
    res.setHeader("connection", "close");
    send(res, status, body);
  };

  const openSse = (req: IncomingMessage, res: ServerResponse): SseStream => {
    let started = false;
    let done = false;
    let heartbeat: NodeJS.Timeout | null = null;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const finish = () => {
      if (done) return;
      done = true;
      if (heartbeat) clearInterval(heartbeat);
      openStreams.delete(finish);
      resolveClosed();
      if (!res.writableEnded) res.end();
    };
    openStreams.add(finish);
    req.on("close", finish);
    res.on("error", finish);
    const start = () => {
      started = true;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", [VERSION_HEADER]: VERSION });
      res.write(": teamwork event stream\n\n");
      heartbeat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
      heartbeat.unref();
    };
    return {
      open() {
        if (!started && !done) start();
      },
      send(event, data) {
        if (done) return;
        if (!started) start();
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      },
      closed,
      close: finish,
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      return sendError(req, res, new TeamworkError("invalid_input", "malformed request URL"));
    }
    let found;
    try {
      found = match(req.method ?? "GET", url.pathname);
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
        const body = await readBody(req);
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new TeamworkError("invalid_input", "request body must be a JSON object");
        fields = body as Record<string, unknown>;
      }
      for (const p of route.params) {
        if (Object.hasOwn(fields, p)) throw new TeamworkError("invalid_input", `"${p}" is given in the path; do not repeat it`);
      }
      if (SSE_ROUTES.has(route.name)) {
        const input = routes[route.name].input({ ...fields, ...params }, "") as never;
        const sse = openSse(req, res);
        await streams[route.name as StreamRoute](input, sse);
        sse.close();
        return;
      }
      const reply = await invoke(route.name as JsonRoute, { ...fields, ...params });
      if (reply.contentType) {
        const text = String(reply.body);
        res.writeHead(reply.status, { "content-type": reply.contentType, "content-length": Buffer.byteLength(text), [VERSION_HEADER]: VERSION });
        res.end(text);
      } else send(res, reply.status, reply.body);
    } catch (err) {
      sendError(req, res, err);
    }
  };

  const server = createServer({ requestTimeout: 60_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
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
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
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
    let buffer = "";
    let closing = false;
    let ended = false;
    let inFlight = 0;
    const reply = (line: object) => {
      if (!socket.destroyed) socket.write(JSON.stringify(line) + "\n");
    };
    const fail = (id: unknown, err: unknown) => {
      const { status, body } = errorReply(err, log, { rpc: true });
      reply({ id: typeof id === "number" || typeof id === "string" ? id : null, status, body });
    };
    const refuse = (err: TeamworkError) => {
      closing = true;
      fail(null, err);
      socket.end();
    };
    const onLine = (line: string) => {
      if (line.trim() === "") return;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch (err) {
        return refuse(new TeamworkError("invalid_input", `RPC line is not valid JSON: ${(err as Error).message}`));
      }
      if (typeof msg !== "object" || msg === null || Array.isArray(msg)) return refuse(new TeamworkError("invalid_input", "an RPC line must be a JSON object"));
      const { id, call, input } = msg as { id?: unknown; call?: unknown; input?: unknown };
      if (!(typeof id === "number" && Number.isSafeInteger(id)) && !(typeof id === "string" && id.length <= 64)) {
        return refuse(new TeamworkError("invalid_input", `"id" must be an integer or a short string`));
      }
      inFlight++;
      void (async () => {
        try {
          if (typeof call !== "string" || !Object.hasOwn(routes, call)) {
            throw new TeamworkError("not_found", `unknown call ${JSON.stringify(call)}`, "see docs/protocol.md for the routes");
          }
          if (SSE_ROUTES.has(call as RouteName)) throw new TeamworkError("invalid_input", `${call} is a stream: open it over HTTP (GET ${routes[call as RouteName].path})`);
          if (input !== undefined && (typeof input !== "object" || input === null || Array.isArray(input))) throw new TeamworkError("invalid_input", `"input" must be a JSON object`);
          const r = await invoke(call as JsonRoute, (input ?? {}) as Record<string, unknown>);
          reply(r.contentType ? { id, status: r.status, contentType: r.contentType, body: String(r.body) } : { id, status: r.status, body: r.body });
        } catch (err) {
          fail(id, err);
        } finally {
          if (--inFlight === 0 && ended) socket.end();
        }
      })();
    };
    const onData = (chunk: Buffer | string) => {
      if (closing) return;
      buffer += typeof chunk === "string" ? chunk : chunk.toString("utf8");
      let nl: number;
      while (!closing && (nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        onLine(line);
      }
      if (!closing && buffer.length > MAX_RPC_LINE) {
        buffer = "";
        refuse(new TeamworkError("payload_too_large", `RPC line is longer than ${MAX_RPC_LINE} bytes`));
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => rpcSockets.delete(socket));
    // The client said all it will say: answer what is in flight, then close (allowHalfOpen).
    socket.on("end", () => {
      closing = true;
      ended = true;
      if (inFlight === 0) socket.end();
    });
    if (head.length) onData(head);
  };

  server.on("clientError", (err, socket) => {
    log.warn("request.malformed", { error: err.message });
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n" + JSON.stringify({ error: { code: "invalid_input", message: "malformed HTTP request" } }));
    else socket.destroy();
  });
  return {
    server,
    closeStreams() {
      for (const close of [...openStreams]) close();
    },
    closeAllConnections() {
      server.closeAllConnections();
      for (const s of rpcSockets) s.destroy();
    },
  };
}
