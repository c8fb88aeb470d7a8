// The typed client of the socket API: call a route by name with its input, get its output
// or a TeamworkError carrying the daemon's error code.

import type { Agent, ClientRequest, IncomingMessage } from "node:http";
import { TeamworkError } from "../lib/errors.js";
import { LineDecoder } from "../lib/line-decoder.js";
import { errorCodeForStatus, type ErrorBody } from "../protocol/errors.js";
import { buildPath, routes, SHA256_HEADER, type RouteInput, type RouteName, type RouteOutput } from "../protocol/routes.js";
import { VERSION, VERSION_HEADER } from "../protocol/version.js";
import type { ControlEvent, EventMap, EventName, StreamEvent } from "../protocol/events.js";
import { RpcConnection, RpcUnsupported, replyError } from "./rpc.js";
import { lazyImport } from "../lib/lazy-import.js";
import { NotAnswering } from "./errors.js";
import { readFileSync } from "node:fs";

export { NotAnswering };

/** How long a call waits for the daemon unless told otherwise (the CLI passes its --timeout, 10 s by default). */
export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * How long an open event stream may stay silent before the daemon is judged lost, beyond
 * the call timeout: the daemon writes a keep-alive comment every 15 s (daemon/server.ts).
 */
export const STREAM_SILENCE_MS = 15_000;

export interface ClientOptions {
  socket: string;
  /** Keep connections open between calls (for many calls in a row). */
  keepAlive?: boolean;
  /** Called once when the daemon's version differs from this client's. */
  onVersionMismatch?: (daemonVersion: string) => void;
  /** How long a call (its connection included) may take before NotAnswering; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** The daemon's pid file, read to name the daemon that does not answer. */
  pidFile?: string;
  /**
   * Called when no daemon listens (the request never reached one): start it, and the call
   * is retried once. Without it, such a call fails with daemon_unreachable.
   */
  onUnreachable?: (err: TeamworkError) => Promise<void>;
  /**
   * Called when the daemon closed the connection during a call, or could not be reached
   * after such a close: the error that says why (it crashed), or null to keep the plain one.
   */
  explainLoss?: (duringCall: boolean) => Promise<TeamworkError | null>;
}

/** A connection failure that is none of the known kinds, as a TeamworkError: never a bare socket error. */
export function connectionFailed(err: Error): TeamworkError {
  return new TeamworkError("unavailable", `the connection to the daemon failed: ${err.message}`, "try again; see `teamwork daemon status`", undefined, { cause: err });
}

/** Reads a refused request's JSON error body and rejects with its error (the HTTP status's when the body has none). */
function rejectWithErrorBody(res: IncomingMessage, status: number, reject: (err: TeamworkError) => void): void {
  const chunks: Buffer[] = [];
  res.on("data", (c: Buffer) => chunks.push(c));
  res.on("error", (err) => reject(connectionFailed(err)));
  res.on("end", () => {
    try {
      const e = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as ErrorBody).error;
      reject(new TeamworkError(e.code, e.message, e.hint));
    } catch {
      reject(new TeamworkError(errorCodeForStatus(status), `HTTP ${status}`));
    }
  });
}

export function unreachable(socket: string, err: NodeJS.ErrnoException): TeamworkError {
  if (err.code === "EACCES" || err.code === "EPERM") {
    return new TeamworkError("daemon_unreachable", `cannot open the daemon's socket ${socket}: permission denied`, "the socket belongs to another user; run as that user or use your own --home");
  }
  return new TeamworkError("daemon_unreachable", "daemon not running", "start it with `teamwork daemon start`");
}

function readPidFile(file: string | undefined): number | null {
  if (!file) return null;
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

// node:http is loaded only when needed (streams, or a daemon without RPC): a command's start
// is mostly module loading, and most commands make RPC calls only.
let httpModule: Promise<typeof import("node:http")> | null = null;
const http = () => (httpModule ??= lazyImport<typeof import("node:http")>("node:http"));

/** A file's bytes as a byte route answers them. */
export interface Download {
  name: string;
  mediaType: string;
  /** Bytes the body carries (content-length). */
  size: number;
  /** SHA-256 of the bytes, hex, as the store recorded it. */
  sha256: string;
  body: IncomingMessage;
}

/** The exact file name of a content-disposition (RFC 8187 filename*, else filename), or null. */
export function filenameOf(disposition: string): string | null {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim());
    } catch {
      // fall back to the plain one
    }
  }
  return /filename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
}

export class Client {
  private agent: Agent | undefined;
  private versionChecked = false;
  /** Calls go over RPC (one connection, a line per call) unless the daemon does not speak it. */
  private rpc: RpcConnection | null;

  constructor(private readonly opts: ClientOptions) {
    this.rpc = new RpcConnection(opts.socket, {
      timeoutMs: this.timeoutMs,
      onVersion: (v) => this.noteVersion(v),
      connectError: (err) => unreachable(opts.socket, err),
      notAnswering: () => this.notAnswering(),
    });
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The error of a call the daemon did not answer in time. */
  notAnswering(write = false): NotAnswering {
    return new NotAnswering(readPidFile(this.opts.pidFile), this.timeoutMs, write);
  }

  /** Starts loading what streams need, so a stream opened soon after a call opens at once. */
  willStream(): void {
    void http();
  }

  get socket(): string {
    return this.opts.socket;
  }

  close(): void {
    this.rpc?.close();
    this.agent?.destroy();
  }

  private target(name: RouteName, input: object): { method: string; path: string; body: string | undefined } {
    const route = routes[name];
    const { path, rest } = buildPath(route.path, input as Record<string, unknown>);
    if (route.method === "GET" || route.method === "DELETE") {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(rest)) if (v !== undefined) query.set(k, String(v));
      const qs = query.toString();
      return { method: route.method, path: qs ? `${path}?${qs}` : path, body: undefined };
    }
    return { method: route.method, path, body: JSON.stringify(rest) };
  }

  private checkVersion(res: IncomingMessage): void {
    const v = res.headers[VERSION_HEADER];
    this.noteVersion(typeof v === "string" ? v : undefined);
  }

  private noteVersion(v: string | undefined): void {
    if (this.versionChecked) return;
    this.versionChecked = true;
    if (v !== undefined && v !== VERSION) this.opts.onVersionMismatch?.(v);
  }

  async call<K extends RouteName>(name: K, input: RouteInput<K>): Promise<RouteOutput[K]> {
    for (let resets = 0; ; resets++) {
      try {
        return await this.once(name, input);
      } catch (caught) {
        const err = caught instanceof TeamworkError || !(caught instanceof Error) ? caught : connectionFailed(caught);
        if (!(err instanceof TeamworkError)) throw err;
        const lost = err.code === "unavailable" && /closed the connection/.test(err.message);
        // Took the connection and then said nothing: a daemon is there; starting another or
        // repeating the call cannot help.
        if (err instanceof NotAnswering) throw routes[name].method === "GET" || err.write ? err : new NotAnswering(err.pid, err.timeoutMs, true);
        // Refused: the request never reached a daemon, so starting one and retrying is safe.
        if (err.code === "daemon_unreachable" && this.opts.onUnreachable && !/permission denied/.test(err.message)) {
          const start = this.opts.onUnreachable;
          this.opts.onUnreachable = undefined; // once
          await start(err);
          continue;
        }
        // Reset by a daemon that is stopping or just died: only a read is safe to repeat.
        if (lost && routes[name].method === "GET" && resets < 40) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        // Closed on us, or gone after that: a daemon that crashed is said so, not "not running".
        if (this.opts.explainLoss && (lost || (resets > 0 && err.code === "daemon_unreachable"))) {
          const why = await this.opts.explainLoss(lost && routes[name].method !== "GET");
          if (why) throw why;
        }
        throw err;
      }
    }
  }

  private async once<K extends RouteName>(name: K, input: RouteInput<K>): Promise<RouteOutput[K]> {
    if (this.rpc) {
      try {
        const reply = await this.rpc.call(name, input as object);
        if (reply.status >= 400) throw replyError(reply.status, reply.body);
        return reply.body as RouteOutput[K];
      } catch (err) {
        if (!(err instanceof RpcUnsupported)) throw err;
        // An older daemon: plain HTTP from now on.
        this.rpc.close();
        this.rpc = null;
      }
    }
    return this.onceHttp(name, input);
  }

  private async onceHttp<K extends RouteName>(name: K, input: RouteInput<K>): Promise<RouteOutput[K]> {
    const { method, path, body } = this.target(name, input);
    const { request, Agent } = await http();
    if (this.opts.keepAlive) this.agent ??= new Agent({ keepAlive: true, maxSockets: 16 });
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.opts.socket,
          path,
          method,
          agent: this.agent,
          headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          this.checkVersion(res);
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", (err) => reject(connectionFailed(err)));
          res.on("end", () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              reject(new TeamworkError("internal", `the daemon answered ${res.statusCode} with something that is not JSON`));
              return;
            }
            const status = res.statusCode ?? 500;
            if (status >= 400) {
              const e = (parsed as Partial<ErrorBody>).error;
              reject(new TeamworkError(e?.code ?? errorCodeForStatus(status), e?.message ?? `HTTP ${status}`, e?.hint));
            } else resolve(parsed as RouteOutput[K]);
          });
        },
      );
      // The whole exchange, from connecting to the reply's last byte.
      const timer = setTimeout(() => req.destroy(this.notAnswering()), this.timeoutMs);
      req.on("close", () => clearTimeout(timer));
      req.on("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err instanceof TeamworkError) reject(err);
        else if (["ENOENT", "ECONNREFUSED", "EACCES", "EPERM", "ENOTDIR"].includes(err.code ?? "")) reject(unreachable(this.opts.socket, err));
        else if (err.code === "ECONNRESET" || err.code === "EPIPE") reject(new TeamworkError("unavailable", "the daemon closed the connection (is it stopping?)"));
        else reject(connectionFailed(err));
      });
      req.end(body);
    });
  }

  /**
   * Opens a byte route (a file kept in the store: protocol/routes.ts BYTE_ROUTES) and resolves
   * with its description and its body, once the daemon has answered the head; an error reply
   * (404: no such job or artifact) rejects with its TeamworkError. The body is the caller's to
   * read (or destroy); it must come within the call timeout of the last bytes read.
   */
  async download(name: "jobsArtifact" | "uploadsFile", input: RouteInput<"jobsArtifact"> | RouteInput<"uploadsFile">): Promise<Download> {
    const { path } = this.target(name, input);
    const { request } = await http();
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.opts.socket, path, method: "GET" }, (res) => {
        this.checkVersion(res);
        const status = res.statusCode ?? 500;
        if (status >= 400) {
          rejectWithErrorBody(res, status, reject);
          return;
        }
        const header = (h: string) => {
          const v = res.headers[h];
          return typeof v === "string" ? v : "";
        };
        const size = Number(header("content-length"));
        const sha256 = header(SHA256_HEADER);
        if (!Number.isSafeInteger(size) || !/^[0-9a-f]{64}$/.test(sha256)) {
          res.destroy();
          reject(new TeamworkError("internal", "the daemon answered a file without its length or its SHA-256"));
          return;
        }
        resolve({ name: filenameOf(header("content-disposition")) ?? String((input as { name: string }).name), mediaType: header("content-type") || "application/octet-stream", size, sha256, body: res });
      });
      // The head must come within the call timeout, and then the bytes must keep coming.
      req.setTimeout(this.timeoutMs, () => req.destroy(this.notAnswering()));
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (err instanceof TeamworkError) reject(err);
        else if (["ENOENT", "ECONNREFUSED", "EACCES", "EPERM", "ENOTDIR"].includes(err.code ?? "")) reject(unreachable(this.opts.socket, err));
        else reject(connectionFailed(err));
      });
      req.end();
    });
  }

  /**
   * Opens an SSE stream and calls onEvent for each event until close() is called or the
   * stream ends. `opened` resolves once the daemon accepted the stream; `done` resolves when
   * the stream ends (daemon gone or closed), and rejects if it could not be opened (an error
   * reply such as 404).
   */
  stream(
    name: "jobsStream" | "eventsStream",
    input: RouteInput<"jobsStream"> | RouteInput<"eventsStream">,
    onEvent: (e: StreamEvent) => void,
    opts: {
      /** Resume after this event (the `lastEventId` of an earlier stream): nothing missed, nothing twice. */
      lastEventId?: string | null;
      onControl?: (e: ControlEvent) => void;
    } = {},
  ): { close(): void; done: Promise<void>; opened: Promise<void>; readonly lastEventId: string | null } {
    const { path } = this.target(name, input);
    let req: ClientRequest | null = null;
    let lastEventId = opts.lastEventId ?? null;
    let closed = false;
    let markOpen!: () => void;
    const opened = new Promise<void>((r) => (markOpen = r));
    const done = new Promise<void>((resolve, reject) => {
      http().then(({ request }) => {
        if (closed) return resolve();
        // A frozen daemon takes the connection and says nothing: the stream must open within
        // the call timeout, and once open hear something (an event or the keep-alive) at least
        // every STREAM_SILENCE_MS plus that.
        const lost = () => {
          reject(this.notAnswering());
          req?.destroy();
        };
        const headers: Record<string, string> = { accept: "text/event-stream" };
        if (lastEventId !== null) headers["last-event-id"] = lastEventId;
        req = request({ socketPath: this.opts.socket, path, method: "GET", headers }, (res) => {
          req!.setTimeout(STREAM_SILENCE_MS + this.timeoutMs, lost);
          this.checkVersion(res);
          const status = res.statusCode ?? 500;
          if (status >= 400) {
            rejectWithErrorBody(res, status, reject);
            return;
          }
          markOpen();
          // An event is its lines up to an empty line; lines are decoded whole (LineDecoder).
          const lines = new LineDecoder(Number.POSITIVE_INFINITY);
          let block: string[] = [];
          res.on("data", (chunk: Buffer) => {
            for (const line of lines.push(chunk)) {
              if (line !== "") {
                block.push(line);
                continue;
              }
              const parsed = parseSseBlock(block.join("\n"));
              block = [];
              if (!parsed) continue;
              if (parsed.id !== null) lastEventId = parsed.id;
              if (parsed.event.type === "reset" || parsed.event.type === "dropped") opts.onControl?.(parsed.event as ControlEvent);
              else onEvent(parsed.event as StreamEvent);
            }
          });
          res.on("end", () => resolve());
          res.on("close", () => resolve());
          res.on("error", () => resolve());
        });
        req.setTimeout(this.timeoutMs, lost);
        req.on("error", (err: NodeJS.ErrnoException) => {
          if (["ENOENT", "ECONNREFUSED", "EACCES", "EPERM"].includes(err.code ?? "")) reject(unreachable(this.opts.socket, err));
          else if (err.code === "ECONNRESET" || err.message === "aborted") resolve();
          else reject(err instanceof TeamworkError ? err : connectionFailed(err));
        });
        req.end();
      }, reject);
    });
    return {
      close: () => {
        closed = true;
        req?.destroy();
      },
      done,
      opened,
      get lastEventId() {
        return lastEventId;
      },
    };
  }
}

/** One SSE block: its event (a job event or a control event) and its id, if it has one. */
export function parseSseBlock(block: string): { id: string | null; event: StreamEvent | ControlEvent } | null {
  let event: string | null = null;
  let id: string | null = null;
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    else if (line.startsWith("id:")) id = line.slice(3).trim();
  }
  if (!event || data.length === 0) return null;
  try {
    return { id, event: { type: event as EventName, data: JSON.parse(data.join("\n")) as EventMap[EventName] } as StreamEvent };
  } catch {
    return null;
  }
}
