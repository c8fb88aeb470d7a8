// The socket API's HTTP layer: match a route, read and validate its input, call its
// handler, write the reply. Only this file writes HTTP. Bad input of any kind becomes a
// 4xx JSON error and a log line; nothing a client sends can crash the daemon.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { TeamworkError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import { HTTP_STATUS, type ErrorBody } from "../protocol/errors.js";
import { MAX_BODY_BYTES, routes, SSE_ROUTES, type Method, type RouteName } from "../protocol/routes.js";
import { VERSION, VERSION_HEADER } from "../protocol/version.js";
import type { Handlers, JsonRoute, SseStream, StreamHandlers, StreamRoute } from "./context.js";

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
  const out: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    if (Object.hasOwn(out, k)) throw new TeamworkError("invalid_input", `query parameter "${k}" is given more than once`);
    out[k] = v;
  }
  return out;
}

export function createApiServer(opts: { handlers: Handlers; streams: StreamHandlers; log: Logger }): {
  server: Server;
  closeStreams(): void;
} {
  const { handlers, streams, log } = opts;
  const openStreams = new Set<() => void>();

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
    err = storeFault(err);
    let body: ErrorBody;
    let status: number;
    if (err instanceof TeamworkError) {
      status = HTTP_STATUS[err.code];
      body = { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } };
      log.warn("request.rejected", { method: req.method, path: req.url, status, error: err.message });
    } else {
      status = 500;
      body = { error: { code: "internal", message: `internal error: ${(err as Error)?.message ?? String(err)}` } };
      log.error("request.failed", { method: req.method, path: req.url, error: (err as Error)?.stack ?? String(err) });
    }
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
      const input = routes[route.name].input({ ...fields, ...params }, "") as never;
      if (SSE_ROUTES.has(route.name)) {
        const sse = openSse(req, res);
        await streams[route.name as StreamRoute](input, sse);
        sse.close();
        return;
      }
      const reply = await handlers[route.name as JsonRoute](input);
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
  };
}
