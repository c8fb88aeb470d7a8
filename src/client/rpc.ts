// The client side of the RPC protocol (docs/protocol.md, "RPC"): one connection, upgraded
// from HTTP once, then one JSON object per line each way. Calls may overlap; each reply
// names its call. An idle connection does not keep the process alive.

import { createConnection, type Socket } from "node:net";
import { TeamworkError } from "../lib/errors.js";
import { LineDecoder } from "../lib/line-decoder.js";
import { errorCodeForStatus } from "../protocol/errors.js";
import { RPC_PROTOCOL, VERSION_HEADER } from "../protocol/version.js";

export interface RpcReply {
  status: number;
  body: unknown;
  contentType?: string;
}

/** The longest answer to the upgrade taken before the daemon is judged not to speak RPC. */
const MAX_UPGRADE_HEAD = 16_384;

/** The daemon answered the upgrade with something else than 101: it does not speak RPC. */
export class RpcUnsupported extends Error {}

interface Pending {
  resolve: (r: RpcReply) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
  /** The call as sent, to send again when the daemon closed an idle connection unread. */
  line: string;
}

export class RpcConnection {
  private socket: Socket | null = null;
  private ready: Promise<Socket> | null = null;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;

  constructor(
    private readonly socketPath: string,
    private readonly opts: {
      timeoutMs: number;
      onVersion: (v: string | undefined) => void;
      /** Maps a connect error (ENOENT, ECONNREFUSED, …) to what the caller should see. */
      connectError: (err: NodeJS.ErrnoException) => unknown;
      /** The error of a call not answered within timeoutMs, the upgrade included (a frozen daemon). */
      notAnswering?: () => unknown;
    },
  ) {}

  private notAnswering(): unknown {
    return this.opts.notAnswering?.() ?? new TeamworkError("daemon_unreachable", `the daemon is not answering (no reply within ${this.opts.timeoutMs / 1000}s)`);
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
    this.ready = null;
  }

  /**
   * One call. Its time limit (timeoutMs) runs from here, the connection and its upgrade
   * included: a daemon that accepts connections but never answers (stopped by SIGSTOP,
   * wedged) fails the call in that time, never later.
   */
  async call(name: string, input: object): Promise<RpcReply> {
    const started = Date.now();
    const socket = await this.connection();
    const id = ++this.seq;
    return new Promise<RpcReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.idle();
        reject(this.notAnswering());
      }, Math.max(0, this.opts.timeoutMs - (Date.now() - started)));
      const line = JSON.stringify({ id, call: name, input }) + "\n";
      this.pending.set(id, { resolve, reject, timer, line });
      socket.ref();
      socket.write(line);
    });
  }

  private connection(): Promise<Socket> {
    return (this.ready ??= this.connectWithRetry().catch((err: unknown) => {
      this.ready = null;
      throw err;
    }));
  }

  /**
   * The daemon closed an idle connection and read nothing after saying so: the calls sent
   * meanwhile were never run, and go again on a new connection (within their time limit).
   */
  private resend(calls: [number, Pending][]): void {
    if (calls.length === 0) return;
    this.connection().then(
      (socket) => {
        socket.ref();
        for (const [id, p] of calls) {
          this.pending.set(id, p);
          socket.write(p.line);
        }
      },
      (err: unknown) => {
        for (const [, p] of calls) {
          clearTimeout(p.timer);
          p.reject(err);
        }
      },
    );
  }

  private idle(): void {
    if (this.pending.size === 0) this.socket?.unref();
  }

  /**
   * A connection reset before the upgrade was answered (a daemon starting or stopping) sent
   * no call yet, so connecting again is safe; a refusal (nobody listens) is final.
   */
  private async connectWithRetry(): Promise<Socket> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.connect();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const reset = code === "ECONNRESET" || code === "EPIPE";
        // Closed every time: a daemon too old to know the upgrade (some drop it); HTTP then.
        if (tries >= 5 && reset) throw new RpcUnsupported("the daemon closes the connection on the RPC upgrade");
        if (!reset) throw err instanceof TeamworkError || err instanceof RpcUnsupported ? err : this.opts.connectError(err as NodeJS.ErrnoException);
        await new Promise((r) => setTimeout(r, 20 * tries));
      }
    }
  }

  private connect(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.socketPath);
      socket.setNoDelay(true);
      let upgraded = false;
      let head: Buffer = Buffer.alloc(0);
      // The upgrade's own limit: a daemon that accepts but never answers is not waited on.
      const upgradeTimer = setTimeout(() => {
        if (!upgraded) socket.destroy(this.notAnswering() as Error);
      }, this.opts.timeoutMs);
      // Replies are not bounded here: the daemon bounds what it sends (a list's limit).
      const lines = new LineDecoder(Number.POSITIVE_INFINITY);
      /** Closed idle by the daemon: what happens to this socket next concerns no call. */
      let retired = false;
      const retire = () => {
        retired = true;
        if (this.socket === socket) {
          this.socket = null;
          this.ready = null;
        }
        const calls = [...this.pending];
        this.pending.clear();
        this.resend(calls);
      };
      const dropped = (err: unknown) => {
        if (this.socket === socket) {
          this.socket = null;
          this.ready = null;
        }
        if (retired) return;
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          this.pending.delete(id);
          p.reject(err);
        }
      };
      socket.on("connect", () => {
        socket.write(`GET /rpc HTTP/1.1\r\nhost: teamwork\r\nconnection: Upgrade\r\nupgrade: ${RPC_PROTOCOL}\r\n\r\n`);
      });
      // Bytes, not strings: lines are split on the newline byte and decoded whole (LineDecoder).
      socket.on("data", (chunk: Buffer) => {
        if (!upgraded) {
          head = head.length ? Buffer.concat([head, chunk]) : chunk;
          const end = head.indexOf("\r\n\r\n");
          if (end < 0) {
            if (head.length > MAX_UPGRADE_HEAD) socket.destroy(new RpcUnsupported("the daemon's answer to the RPC upgrade is too long"));
            return;
          }
          const rest = head.subarray(end + 4);
          const headLines = head.subarray(0, end).toString("latin1").split("\r\n");
          // Refused for now (too many connections): the reason is in the JSON body.
          if (/^HTTP\/1\.1 503 /.test(headLines[0] ?? "")) {
            const length = Number(headLines.find((l) => l.toLowerCase().startsWith("content-length:"))?.slice(15).trim() ?? 0);
            if (rest.length < length) return; // the rest of the body is coming
            let body: unknown = null;
            try {
              body = JSON.parse(rest.subarray(0, length).toString("utf8"));
            } catch {
              // the status says enough
            }
            socket.destroy(replyError(503, body));
            return;
          }
          head = Buffer.alloc(0);
          if (!/^HTTP\/1\.1 101 /.test(headLines[0] ?? "")) {
            socket.destroy(new RpcUnsupported(`the daemon answered the RPC upgrade with ${headLines[0]}`));
            return;
          }
          const version = headLines.find((l) => l.toLowerCase().startsWith(`${VERSION_HEADER}:`));
          this.opts.onVersion(version?.slice(VERSION_HEADER.length + 1).trim());
          upgraded = true;
          clearTimeout(upgradeTimer);
          this.socket = socket;
          resolve(socket);
          chunk = rest;
        }
        for (const line of lines.push(chunk)) {
          let msg: { id?: unknown; status?: unknown; body?: unknown; contentType?: unknown; closing?: unknown };
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch {
            socket.destroy(new TeamworkError("internal", "the daemon sent an RPC line that is not JSON"));
            return;
          }
          const p = typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
          if (!p) {
            // id null: the daemon closes the connection next: idle (calls sent meanwhile were
            // not read, and go again), or it refused our framing.
            if (msg.id === null && msg.closing === "idle") retire();
            else if (msg.id === null) dropped(replyError(Number(msg.status) || 400, msg.body));
            continue;
          }
          this.pending.delete(msg.id as number);
          clearTimeout(p.timer);
          p.resolve({ status: Number(msg.status), body: msg.body, ...(typeof msg.contentType === "string" ? { contentType: msg.contentType } : {}) });
        }
        this.idle();
      });
      socket.on("error", (err: NodeJS.ErrnoException) => {
        if (!upgraded) reject(err instanceof RpcUnsupported || err instanceof TeamworkError || err.code === "ECONNRESET" || err.code === "EPIPE" ? err : this.opts.connectError(err));
        else dropped(err instanceof TeamworkError ? err : new TeamworkError("unavailable", "the daemon closed the connection (is it stopping?)"));
      });
      socket.on("close", () => {
        clearTimeout(upgradeTimer);
        // Closed with no answer at all: a daemon starting or stopping (retried), not an old one.
        if (!upgraded) reject(Object.assign(new Error("the daemon closed the connection before answering the RPC upgrade"), { code: "ECONNRESET" }));
        dropped(new TeamworkError("unavailable", "the daemon closed the connection (is it stopping?)"));
      });
    });
  }
}

/** The TeamworkError an error reply carries. */
export function replyError(status: number, body: unknown): TeamworkError {
  const e = (body as { error?: { code?: string; message?: string; hint?: string } } | null)?.error;
  return new TeamworkError((e?.code as TeamworkError["code"] | undefined) ?? errorCodeForStatus(status), e?.message ?? `status ${status}`, e?.hint);
}
