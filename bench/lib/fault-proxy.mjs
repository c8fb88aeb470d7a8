// The fault proxy of tests/helpers/fault-proxy.ts (read it for what each fault means), as plain
// JavaScript for the bench, which runs without a TypeScript step. Keep the two in step.
import { createServer, connect } from "node:net";
async function startFaultProxy(opts = {}) {
  const targetHost = opts.targetHost ?? "127.0.0.1";
  const targetPort = opts.targetPort ?? 5432;
  let mode = "open";
  let nextId = 1;
  const conns = new Set();
  const stats = { accepted: 0, open: 0, bytesUp: 0, bytesDown: 0, cutConnections: 0 };
  const held = (c) => mode === "blackhole" || c.own;
  const close = (c, reset) => {
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
  const sideClosed = (c) => {
    if (held(c)) c.halfClosed = true;
    else close(c, false);
  };
  const flush = (c) => {
    if (c.closed || held(c)) return;
    if (c.halfClosed) {
      if (c.server && !c.server.destroyed) for (const b of c.heldUp.splice(0)) up(c, b);
      if (!c.client.destroyed) for (const b of c.heldDown.splice(0)) down(c, b);
      c.client.end();
      c.server?.end();
      close(c, false);
      return;
    }
    if (!c.server) {
      openUpstream(c);
      return;
    }
    for (const b of c.heldUp.splice(0)) up(c, b);
    for (const b of c.heldDown.splice(0)) down(c, b);
    c.client.resume();
    c.server.resume();
  };
  const openUpstream = (c) => {
    const server2 = connect({ host: targetHost, port: targetPort });
    c.server = server2;
    server2.setNoDelay(true);
    server2.once("connect", () => c.serverPort = server2.localPort ?? null);
    server2.on("data", (b) => {
      if (held(c)) {
        c.heldDown.push(b);
        server2.pause();
        return;
      }
      down(c, b);
    });
    server2.on("error", () => sideClosed(c));
    server2.on("close", () => sideClosed(c));
    for (const b of c.heldUp.splice(0)) up(c, b);
  };
  const up = (c, b) => {
    c.bytesUp += b.length;
    stats.bytesUp += b.length;
    c.server.write(b);
  };
  const down = (c, b) => {
    c.bytesDown += b.length;
    stats.bytesDown += b.length;
    c.client.write(b);
  };
  const server = createServer((client) => {
    client.setNoDelay(true);
    stats.accepted++;
    stats.open++;
    const c = {
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
      }
    };
    conns.add(c);
    client.on("data", (b) => {
      if (held(c) || !c.server) {
        c.heldUp.push(b);
        if (held(c)) client.pause();
        return;
      }
      up(c, b);
    });
    client.on("error", () => sideClosed(c));
    client.on("close", () => sideClosed(c));
    if (!held(c)) openUpstream(c);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = server.address().port;
  return {
    port,
    get mode() {
      return mode;
    },
    urlThrough(url) {
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
      const closed = new Promise((r) => server.close(() => r()));
      for (const c of [...conns]) close(c, false);
      await closed;
    },
    stats: () => {
      let heldBytes = 0;
      for (const c of conns) for (const b of [...c.heldUp, ...c.heldDown]) heldBytes += b.length;
      return { ...stats, heldBytes };
    },
    connections: () => [...conns].sort((a, b) => a.id - b.id)
  };
}
export {
  startFaultProxy
};
