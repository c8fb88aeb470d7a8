// A TCP forwarder that can fail on demand, one per daemon in front of PostgreSQL (SCALE-OUT.md
// §10, after pg-boss's test/halfOpenProxy.ts). Every connection a daemon opens to its database
// goes through it, so a test can take that daemon's network away without touching the others:
//
// - blackhole(): nothing is forwarded either way and nothing is closed, as when a cable is
//   pulled or a host is partitioned. Connections opened meanwhile are accepted and left
//   waiting (a connect that never gets an answer). What was sent is held, as TCP would keep
//   retransmitting it, and delivered by heal(). A close is not forwarded either: a daemon
//   killed while partitioned leaves its sessions open on the server, which learns of the close
//   only at heal() (or by its own timeouts), as with a real partition.
// - cut(): every current connection is closed at both ends (a reset on the client's side, as
//   when a firewall or the server drops them); new connections are still accepted.
// - heal(): back to forwarding; held bytes go through, in order.
//
// Everything runs on this machine: a connection is a pair of sockets, client (the daemon) and
// server (PostgreSQL).

import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";

export type ProxyMode = "open" | "blackhole";

export interface ProxyStats {
  /** Connections accepted since the proxy started. */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Bytes forwarded from clients to the server, and back. */
  bytesUp: number;
  bytesDown: number;
  /** Connections closed by cut(). */
  cutConnections: number;
  /** Bytes held now by a blackhole (either way), to be delivered by heal(). */
  heldBytes: number;
}

export interface ProxyConnection {
  readonly id: number;
  readonly openedAt: number;
  bytesUp: number;
  bytesDown: number;
  /** The local port of its connection to the server: pg_stat_activity.client_port of its session (null until opened). */
  readonly serverPort: number | null;
  /** Stops forwarding this connection only (both ways), keeping it open. */
  blackhole(): void;
  /** Forwards this connection again (unless the whole proxy is blackholed). */
  heal(): void;
  /** Closes this connection at both ends. */
  cut(): void;
}

export interface FaultProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  readonly mode: ProxyMode;
  /** `url` with its host and port replaced by the proxy's. */
  urlThrough(url: string): string;
  blackhole(): void;
  cut(): void;
  heal(): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
  stats(): ProxyStats;
  /** The connections open now, oldest first. */
  connections(): ProxyConnection[];
}

export interface FaultProxyOptions {
  /** Where to forward to (default 127.0.0.1:5432). */
  targetHost?: string;
  targetPort?: number;
  /** The port to listen on (default: any free one; a restarted daemon keeps its proxy, so its port). */
  port?: number;
}

interface Conn extends Omit<ProxyConnection, "serverPort"> {
  serverPort: number | null;
  client: Socket;
  server: Socket | null;
  /** Bytes held while blackholed, per direction. */
  heldUp: Buffer[];
  heldDown: Buffer[];
  /** This connection alone is blackholed. */
  own: boolean;
  closed: boolean;
  /** One side closed while the connection was blackholed: the other is closed at heal. */
  halfClosed: boolean;
}

export async function startFaultProxy(opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const targetHost = opts.targetHost ?? "127.0.0.1";
  const targetPort = opts.targetPort ?? 5432;
  let mode: ProxyMode = "open";
  let nextId = 1;
  const conns = new Set<Conn>();
  const stats: Omit<ProxyStats, "heldBytes"> = { accepted: 0, open: 0, bytesUp: 0, bytesDown: 0, cutConnections: 0 };

  const held = (c: Conn) => mode === "blackhole" || c.own;

  const close = (c: Conn, reset: boolean) => {
    if (c.closed) return;
    c.closed = true;
    conns.delete(c);
    stats.open--;
    for (const s of [c.client, c.server]) {
      if (!s || s.destroyed) continue;
      if (reset && typeof s.resetAndDestroy === "function") s.resetAndDestroy();
      else s.destroy();
    }
  };

  /** One side went away: the other learns it now, or at heal if the connection is blackholed. */
  const sideClosed = (c: Conn) => {
    if (held(c)) c.halfClosed = true;
    else close(c, false);
  };

  const flush = (c: Conn) => {
    if (c.closed || held(c)) return;
    if (c.halfClosed) {
      // What the surviving side was sent while held is delivered, then it learns of the close.
      if (c.server && !c.server.destroyed) for (const b of c.heldUp.splice(0)) up(c, b);
      if (!c.client.destroyed) for (const b of c.heldDown.splice(0)) down(c, b);
      c.client.end();
      c.server?.end();
      close(c, false);
      return;
    }
    if (!c.server) {
      // Opened while blackholed: its client side was paused with its first bytes held.
      openUpstream(c);
      c.client.resume();
      return;
    }
    // The server socket may still be connecting: writes before connect are queued by net.
    for (const b of c.heldUp.splice(0)) up(c, b);
    for (const b of c.heldDown.splice(0)) down(c, b);
    c.client.resume();
    c.server.resume();
  };

  const openUpstream = (c: Conn) => {
    const server = connect({ host: targetHost, port: targetPort });
    c.server = server;
    server.setNoDelay(true);
    server.once("connect", () => (c.serverPort = server.localPort ?? null));
    server.on("data", (b: Buffer) => {
      if (held(c)) {
        c.heldDown.push(b);
        server.pause();
        return;
      }
      down(c, b);
    });
    server.on("error", () => sideClosed(c));
    server.on("close", () => sideClosed(c));
    for (const b of c.heldUp.splice(0)) up(c, b);
  };

  const up = (c: Conn, b: Buffer) => {
    c.bytesUp += b.length;
    stats.bytesUp += b.length;
    c.server!.write(b);
  };
  const down = (c: Conn, b: Buffer) => {
    c.bytesDown += b.length;
    stats.bytesDown += b.length;
    c.client.write(b);
  };

  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    stats.accepted++;
    stats.open++;
    const c: Conn = {
      id: nextId++,
      openedAt: Date.now(),
      bytesUp: 0,
      bytesDown: 0,
      serverPort: null,
      client,
      server: null,
      heldUp: [],
      heldDown: [],
      own: false,
      closed: false,
      halfClosed: false,
      blackhole() {
        c.own = true;
      },
      heal() {
        c.own = false;
        flush(c);
      },
      cut() {
        stats.cutConnections++;
        close(c, true);
      },
    };
    conns.add(c);
    client.on("data", (b: Buffer) => {
      if (held(c) || !c.server) {
        c.heldUp.push(b);
        if (held(c)) client.pause();
        return;
      }
      up(c, b);
    });
    client.on("error", () => sideClosed(c));
    client.on("close", () => sideClosed(c));
    // A connection opened while blackholed waits, unanswered, for heal().
    if (!held(c)) openUpstream(c);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    get mode() {
      return mode;
    },
    urlThrough(url: string) {
      const u = new URL(url);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    blackhole() {
      mode = "blackhole";
    },
    heal() {
      mode = "open";
      for (const c of [...conns]) flush(c);
    },
    cut() {
      for (const c of [...conns]) {
        stats.cutConnections++;
        close(c, true);
      }
    },
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const c of [...conns]) close(c, false);
      await closed;
    },
    stats: () => {
      let heldBytes = 0;
      for (const c of conns) for (const b of [...c.heldUp, ...c.heldDown]) heldBytes += b.length;
      return { ...stats, heldBytes };
    },
    connections: () => [...conns].sort((a, b) => a.id - b.id),
  };
}
