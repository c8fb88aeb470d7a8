// The fault proxy the scale-out tests put in front of each daemon's PostgreSQL
// (tests/helpers/fault-proxy.ts), against the real server: a query through it works; a
// blackhole makes a query wait, unanswered, until heal; a cut fails it at once.
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";
import { waitFor } from "../helpers/wait.js";
import { PG_TEST_URL, POSTGRES_SKIPPED } from "../store/factory.js";

describe.skipIf(POSTGRES_SKIPPED !== null)("the fault proxy in front of PostgreSQL", () => {
  const proxies: FaultProxy[] = [];
  const clients: pg.Client[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    for (const p of proxies.splice(0)) await p.close();
  });

  const proxy = async () => {
    const target = new URL(PG_TEST_URL);
    const p = await startFaultProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432) });
    proxies.push(p);
    return p;
  };
  const client = async (p: FaultProxy, opts: { connect?: boolean; connectionTimeoutMillis?: number } = {}) => {
    const c = new pg.Client({ connectionString: p.urlThrough(PG_TEST_URL), connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 10_000 });
    c.on("error", () => {});
    clients.push(c);
    if (opts.connect !== false) await c.connect();
    return c;
  };
  /** Whether a promise has settled yet, without waiting. */
  const settled = async (p: Promise<unknown>) => {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    await new Promise((r) => setImmediate(r));
    return done;
  };

  it("forwards a query both ways and counts the connection and the bytes", async () => {
    const p = await proxy();
    const c = await client(p);
    expect((await c.query("SELECT 41 + 1 AS n")).rows).toEqual([{ n: 42 }]);
    const s = p.stats();
    expect(s).toMatchObject({ accepted: 1, open: 1, cutConnections: 0, heldBytes: 0 });
    expect(s.bytesUp).toBeGreaterThan(0);
    expect(s.bytesDown).toBeGreaterThan(0);
    expect(p.connections().map((x) => x.id)).toEqual([1]);
    await c.end();
    await waitFor(() => p.stats().open === 0, { what: "the proxy to see the connection close" });
  });

  it("blackhole: a query waits, unanswered and unfailed, until heal; then it is answered", async () => {
    const p = await proxy();
    const c = await client(p);
    await c.query("SELECT 1");
    p.blackhole();
    expect(p.mode).toBe("blackhole");
    const up = p.stats().bytesUp;
    const q = c.query("SELECT 'after the partition' AS v");
    // The query left the client and is held by the proxy: the server has not seen it.
    await waitFor(() => p.stats().heldBytes > 0, { what: "the proxy to hold the query" });
    expect(p.stats().bytesUp).toBe(up);
    expect(await settled(q)).toBe(false);
    expect(p.stats().open).toBe(1); // nothing was closed
    p.heal();
    expect((await q).rows).toEqual([{ v: "after the partition" }]);
    expect(p.stats().heldBytes).toBe(0);
  });

  it("blackhole: a new connection is accepted but never answered (a connect times out); after heal one connects", async () => {
    const p = await proxy();
    p.blackhole();
    const c = await client(p, { connect: false, connectionTimeoutMillis: 500 });
    await expect(c.connect()).rejects.toThrow(/timeout/i);
    p.heal();
    const d = await client(p);
    expect((await d.query("SELECT 2 AS n")).rows).toEqual([{ n: 2 }]);
  });

  it("blackhole: a client that goes away is not seen going by the server until heal (as in a real partition)", async () => {
    const p = await proxy();
    const admin = new pg.Client({ connectionString: PG_TEST_URL });
    clients.push(admin);
    await admin.connect();
    const c = await client(p);
    const backend = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const alive = async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [backend])).rowCount === 1;
    p.blackhole();
    p.connections()[0]!.blackhole(); // held on its own too: heal() of the proxy alone does not free it
    c.connection.stream.destroy(); // the client's process dies
    // The proxy saw the client go, and holds it back: the server keeps the session. (The
    // session would go only if it learnt of the close; a moment of the event loop is enough
    // for a close that was forwarded, so two round trips to the server show it was not.)
    await waitFor(() => p.connections()[0] !== undefined, { what: "the connection to be held" });
    expect(await alive()).toBe(true);
    expect(await alive()).toBe(true);
    p.heal();
    expect(await alive()).toBe(true); // still held: the connection's own blackhole
    p.connections()[0]!.heal();
    await waitFor(async () => !(await alive()), { what: "the server to end the session after heal" });
    expect(p.stats().open).toBe(0);
  });

  it("blackhole of one connection leaves the others working", async () => {
    const p = await proxy();
    const a = await client(p);
    const b = await client(p);
    const [ca] = p.connections();
    ca!.blackhole();
    const qa = a.query("SELECT 'a' AS v");
    await waitFor(() => p.stats().heldBytes > 0, { what: "the proxy to hold a's query" });
    expect((await b.query("SELECT 'b' AS v")).rows).toEqual([{ v: "b" }]);
    expect(await settled(qa)).toBe(false);
    ca!.heal();
    expect((await qa).rows).toEqual([{ v: "a" }]);
  });

  it("cut: a query in flight fails at once; the server ends the session; new connections work", async () => {
    const p = await proxy();
    const admin = new pg.Client({ connectionString: PG_TEST_URL });
    clients.push(admin);
    await admin.connect();
    const c = await client(p);
    const backend = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const q = c.query("SELECT pg_sleep(30)");
    await waitFor(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'", [backend])).rowCount === 1, { what: "the sleep to start on the server" });
    const t0 = Date.now();
    p.cut();
    await expect(q).rejects.toThrow(/terminated|ECONNRESET|closed/i);
    expect(Date.now() - t0).toBeLessThan(5_000); // at once, not after the 30 s sleep
    expect(p.stats()).toMatchObject({ open: 0, cutConnections: 1 });
    // The server's side was closed too, but a backend notices only when it next talks to its
    // client (or with client_connection_check_interval): ended here, not awaited.
    await admin.query("SELECT pg_terminate_backend($1)", [backend]);
    // A new connection through the same proxy works.
    const d = await client(p);
    expect((await d.query("SELECT 3 AS n")).rows).toEqual([{ n: 3 }]);
    expect(p.stats().accepted).toBe(2);
  });

  it("close: stops listening and closes what is open", async () => {
    const p = await proxy();
    const c = await client(p);
    const ended = new Promise((r) => c.once("end", r));
    await p.close();
    proxies.splice(proxies.indexOf(p), 1);
    await ended;
    const d = new pg.Client({ connectionString: p.urlThrough(PG_TEST_URL), connectionTimeoutMillis: 2000 });
    d.on("error", () => {});
    await expect(d.connect()).rejects.toThrow(/ECONNREFUSED/);
  });
});
