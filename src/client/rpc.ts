// The client side of the RPC protocol (docs/protocol.md, "RPC"): one connection, upgraded
// from HTTP once, then one JSON object per line each way. Calls may overlap; each reply
// names its call. An idle connection does not keep the process alive.

import { createConnection, type Socket } from "node:net";
import { TeamworkError } from "../lib/errors.js";
import { errorCodeForStatus } from "../protocol/errors.js";
import { RPC_PROTOCOL, VERSION_HEADER } from "../protocol/version.js";

export interface RpcReply {
  status: number;
  body: unknown;
  contentType?: string;
}

/** The daemon answered the upgrade with something else than 101: it does not speak RPC. */
export class RpcUnsupported extends Error {}

interface Pending {
  resolve: (r: RpcReply) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
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
    },
  ) {}

  close(): void {
    this.socket?.destroy();
    this.socket = null;
    this.ready = null;
  }

  async call(name: string, input: object): Promise<RpcReply> {
    const socket = await (this.ready ??= this.connectWithRetry().catch((err: unknown) => {
      this.ready = null;
      throw err;
    }));
    const id = ++this.seq;
    return new Promise<RpcReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.idle();
        reject(new TeamworkError("unavailable", `the daemon did not answer within ${this.opts.timeoutMs / 1000}s`));
      }, this.opts.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      socket.ref();
      socket.write(JSON.stringify({ id, call: name, input }) + "\n");
    });
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
      let head = "";
      let buffer = "";
      const dropped = (err: unknown) => {
        if (this.socket === socket) {
          this.socket = null;
          this.ready = null;
        }
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          this.pending.delete(id);
          p.reject(err);
        }
      };
      socket.on("connect", () => {
        socket.write(`GET /rpc HTTP/1.1\r\nhost: teamwork\r\nconnection: Upgrade\r\nupgrade: ${RPC_PROTOCOL}\r\n\r\n`);
      });
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        if (!upgraded) {
          head += chunk;
          const end = head.indexOf("\r\n\r\n");
          if (end < 0) {
            if (head.length > 16_384) socket.destroy(new RpcUnsupported("the daemon's answer to the RPC upgrade is too long"));
            return;
          }
          const lines = head.slice(0, end).split("\r\n");
          buffer = head.slice(end + 4);
          if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? "")) {
            socket.destroy(new RpcUnsupported(`the daemon answered the RPC upgrade with ${lines[0]}`));
            return;
          }
          const version = lines.find((l) => l.toLowerCase().startsWith(`${VERSION_HEADER}:`));
          this.opts.onVersion(version?.slice(VERSION_HEADER.length + 1).trim());
          upgraded = true;
          this.socket = socket;
          resolve(socket);
          if (!buffer) return;
        } else buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          let msg: { id?: unknown; status?: unknown; body?: unknown; contentType?: unknown };
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch {
            socket.destroy(new TeamworkError("internal", "the daemon sent an RPC line that is not JSON"));
            return;
          }
          const p = typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
          if (!p) {
            // id null: the daemon refused our framing (it closes the connection next).
            if (msg.id === null) dropped(replyError(Number(msg.status) || 400, msg.body));
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
