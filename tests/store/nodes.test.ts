// Conformance: nodes, the daemons serving a store (store/types.ts, Nodes). What every store does
// (a node registers, renews its lease, is listed with its running jobs, marks itself stopping
// and leaves; the jobs of owners that are gone go back as interrupted attempts), then what only
// a store shared by nodes does (PostgreSQL): a claim only for a live node, dead by a lapsed
// lease or by a lost lock after a silence, one rescuer per dead node, a lost control session
// reported.

import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asNodes, forEachStore, newJob, T0, TEST_LEASE_MS, teamworkError, anyJobs, tickBatch } from "./suite.js";
import { POSTGRES_SKIPPED, postgresFactory, type StoreFixture, rawClient } from "./factory.js";
import { waitFor } from "../helpers/wait.js";
import type { NodeSession, Store, TickBatch } from "../../src/store/types.js";
import { nodeSessionName } from "../../src/store/postgres/nodes.js";

const empty = (owner: string, now = T0): TickBatch => tickBatch(owner, { now });
const enqueue = async (store: Store, n: number) => (await store.jobs.tick({ ...empty("E"), inserts: Array.from({ length: n }, () => newJob()) })).inserted.map((r) => r.job);
const claim = async (store: Store, owner: string, n = 1) => (await store.jobs.claim({ ...anyJobs(n), owner, now: T0 })).claimed;
const who = (id: string, pid = 4242) => ({ id, host: "host-a", pid });

forEachStore("nodes", (fx) => {
  it("registers a node: listed with its host, pid, times and running jobs; a heartbeat renews its lease", async () => {
    const { store } = fx();
    const before = Date.now();
    const s = await store.nodes.register(who("n1"), TEST_LEASE_MS);
    expect(s.id).toBe("n1");
    const [listed] = await store.nodes.list();
    expect(listed).toMatchObject({ id: "n1", host: "host-a", pid: 4242, stopping: false, running: 0 });
    expect(listed!.leaseUntil - listed!.heartbeatAt).toBeGreaterThanOrEqual(TEST_LEASE_MS - 5);
    expect(listed!.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
    expect(listed!.heartbeatAgeMs).toBeLessThan(60_000);

    const beat = await s.heartbeat(TEST_LEASE_MS);
    expect(beat.leaseUntil).not.toBeNull();
    expect(beat.leaseUntil! - beat.storeNow).toBeGreaterThanOrEqual(TEST_LEASE_MS - 5);
    // The store's clock is this host's here (the local server, or SQLite's own).
    expect(Math.abs(beat.storeNow - Date.now())).toBeLessThan(60_000);
    expect(beat.storeNow).toBeGreaterThanOrEqual(before - 60_000);

    // Jobs running for it are counted; another node is listed after it.
    await enqueue(store, 2);
    await claim(store, "n1", 2);
    await store.nodes.register(who("n2", 4343), TEST_LEASE_MS);
    expect((await store.nodes.list()).map((n) => [n.id, n.running])).toEqual([
      ["n1", 2],
      ["n2", 0],
    ]);
  });

  it("refuses a second registration of a live id (conflict)", async () => {
    const { store } = fx();
    await store.nodes.register(who("same"), TEST_LEASE_MS);
    await teamworkError(store.nodes.register(who("same"), TEST_LEASE_MS), "conflict");
    expect(await store.nodes.list()).toHaveLength(1);
  });

  it("a node stopping is listed so, and goes once it leaves", async () => {
    const { store } = fx();
    const s = await store.nodes.register(who("leaving"), TEST_LEASE_MS);
    await s.markStopping();
    expect((await store.nodes.list())[0]).toMatchObject({ id: "leaving", stopping: true });
    // It still renews its lease while it drains.
    expect((await s.heartbeat(TEST_LEASE_MS)).leaseUntil).not.toBeNull();
    await s.leave(T0);
    expect(await store.nodes.list()).toEqual([]);
  });

  it("rescue hands back the running jobs of an owner that is gone, counting the attempt as interrupted; a live node's stay", async () => {
    const { store } = fx();
    const [, gone] = await Promise.all([store.nodes.register(who("live"), TEST_LEASE_MS), store.nodes.register(who("gone"), TEST_LEASE_MS)]);
    const [j1, j2] = await enqueue(store, 2);
    await claim(store, "gone");
    await claim(store, "live");
    // The node that is gone drops its session without a word (a fence, or its process died).
    gone!.abandon();
    const r = await waitFor(
      async () => {
        const x = await store.nodes.rescueDead({ now: T0 + 5, self: "live", silentMs: 0, leaseMs: TEST_LEASE_MS });
        return x.interrupted > 0 ? x : null;
      },
      { what: "the abandoned node's job rescued" },
    );
    expect(r.interrupted).toBe(1);
    expect(await store.jobs.get(j1!.id)).toMatchObject({
      status: "pending",
      attempts: 1,
      maxAttempts: 3,
      errors: [{ attempt: 1, message: "interrupted: the daemon stopped while this attempt was handed to its worker (it may have begun)", permanent: false, at: T0 + 5 }],
    });
    expect(await store.jobs.get(j2!.id)).toMatchObject({ status: "running", attempts: 1 });
    expect((await store.nodes.rescueDead({ now: T0 + 6, self: "live", silentMs: 0, leaseMs: TEST_LEASE_MS })).interrupted).toBe(0);
    expect((await store.nodes.list()).map((n) => n.id)).toEqual(["live"]);
  });
});

describe.skipIf(POSTGRES_SKIPPED !== null)("nodes on a shared store (postgres): leases, locks, fencing", () => {
  let f: StoreFixture;
  let store: Store;
  let raw: pg.Client;
  beforeEach(async () => {
    f = await postgresFactory.create();
    store = f.store;
    raw = await rawClient(f);
  });
  afterEach(async () => {
    await raw.end();
    await f.cleanup();
  });

  /** Waits until the store's clock is past the node's lease. */
  const lapse = (id: string) =>
    waitFor(async () => (await raw.query(`SELECT 1 FROM nodes WHERE id = $1 AND lease_until < now()`, [id])).rowCount === 1, { what: `the lease of ${id} to lapse` });

  it("claims only for a live node: not for an unknown id, nor a stopping node, nor one whose lease lapsed", async () => {
    const [job] = await enqueue(store, 1);
    expect(await claim(store, "nobody")).toEqual([]);
    const stopping = await store.nodes.register(who("stopping"), TEST_LEASE_MS);
    await stopping.markStopping();
    expect(await claim(store, "stopping")).toEqual([]);
    const brief = await store.nodes.register(who("brief"), 200);
    await lapse("brief");
    expect(await claim(store, "brief")).toEqual([]);
    // Its heartbeat no longer renews the lease: it must fence and register anew.
    expect((await brief.heartbeat(TEST_LEASE_MS)).leaseUntil).toBeNull();
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "pending", attempts: 0 });
    await asNodes(store, "fresh");
    expect((await claim(store, "fresh")).map((j) => j.id)).toEqual([job!.id]);
  });

  it("a node whose lease lapsed is dead even with its lock held: its jobs go back, its row goes", async () => {
    // A lease long enough to claim under load, then ended on the database clock.
    const s = await store.nodes.register(who("lapsed"), TEST_LEASE_MS);
    const [job] = await enqueue(store, 1);
    expect(await claim(store, "lapsed")).toHaveLength(1);
    await raw.query(`UPDATE nodes SET lease_until = now() - interval '1 second' WHERE id = 'lapsed'`);
    await lapse("lapsed");
    expect(await store.nodes.rescueDead({ now: T0, self: "other", silentMs: 60_000, leaseMs: TEST_LEASE_MS })).toEqual({ nodes: ["lapsed"], interrupted: 1, cancelled: 0 });
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "pending", attempts: 1 });
    expect(await store.nodes.list()).toEqual([]);
    expect((await s.heartbeat(TEST_LEASE_MS)).leaseUntil).toBeNull();
  });

  it("a silent node whose lock is held is alive; once its session ends (lock gone) it is dead", async () => {
    const lost: string[] = [];
    const s = await store.nodes.register(who("quiet"), TEST_LEASE_MS);
    s.on("lost", (why) => lost.push(why));
    await enqueue(store, 1);
    await claim(store, "quiet");
    expect(await store.nodes.rescueDead({ now: T0, self: "other", silentMs: 0, leaseMs: TEST_LEASE_MS })).toEqual({ nodes: [], interrupted: 0, cancelled: 0 });
    // The server ends its control session (an operator, a restart, an idle timeout).
    const ended = await raw.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, [nodeSessionName(who("quiet"))]);
    expect(ended.rowCount).toBe(1);
    await waitFor(() => lost.length > 0, { what: "the session reported lost" });
    expect(lost[0]).toMatch(/control connection/);
    // Silent for less than silentMs: left alone (its node is given the time to fence first).
    expect(await store.nodes.rescueDead({ now: T0, self: "other", silentMs: 60_000, leaseMs: TEST_LEASE_MS })).toEqual({ nodes: [], interrupted: 0, cancelled: 0 });
    expect(await store.nodes.rescueDead({ now: T0, self: "other", silentMs: 0, leaseMs: TEST_LEASE_MS })).toEqual({ nodes: ["quiet"], interrupted: 1, cancelled: 0 });
  });

  it("the lock and the row come together: the node's lock is held by its control session, under its own key", async () => {
    await store.nodes.register(who("locked"), TEST_LEASE_MS);
    const r = await raw.query<{ lock_key: number; holder: string }>(
      `SELECT n.lock_key, a.application_name AS holder FROM nodes n
         JOIN pg_locks l ON l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND l.classid = 4243 AND l.objid = n.lock_key AND l.objsubid = 2 AND l.granted
         JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE n.id = 'locked'`,
    );
    expect(r.rows).toEqual([{ lock_key: expect.any(Number), holder: nodeSessionName(who("locked")) }]);
    expect(r.rows[0]!.lock_key).toBeGreaterThanOrEqual(16);
  });

  it("a control session left idle (no heartbeat: a frozen node) is ended by the server after 3 s, and its lock with it", async () => {
    const s = await store.nodes.register(who("frozen"), TEST_LEASE_MS);
    const started = Date.now();
    const lost = new Promise<string>((r) => s.on("lost", r));
    expect(await lost).toMatch(/idle-session timeout/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    await waitFor(async () => (await raw.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = 4243 AND objid >= 16`)).rowCount === 0, { what: "the lock released" });
  });

  it("two rescuers at once: each dead node is handled once, each of its jobs handed back once", async () => {
    const other = await f.openAnother();
    const dead: NodeSession[] = [];
    // Leases long enough to claim under load (registering four took up to 570 ms against
    // 300 ms leases), then ended on the database clock, as if their heartbeats had stopped.
    for (let i = 0; i < 4; i++) dead.push(await store.nodes.register(who(`d${i}`), TEST_LEASE_MS));
    await enqueue(store, 8);
    for (let i = 0; i < 4; i++) expect(await claim(store, `d${i}`, 2)).toHaveLength(2);
    await raw.query(`UPDATE nodes SET lease_until = now() - interval '1 second' WHERE id = ANY($1)`, [["d0", "d1", "d2", "d3"]]);
    for (let i = 0; i < 4; i++) await lapse(`d${i}`);
    const [x, y] = await Promise.all([store, other].map((s) => s.nodes.rescueDead({ now: T0, self: "r", silentMs: 60_000, leaseMs: TEST_LEASE_MS })));
    expect([...x!.nodes, ...y!.nodes].sort()).toEqual(["d0", "d1", "d2", "d3"]);
    expect(x!.interrupted + y!.interrupted).toBe(8);
    const jobs = await store.jobs.list({});
    expect(jobs.every((j) => j.status === "pending" && j.attempts === 1)).toBe(true);
  });

  it("a job left running for an owner that is no node (a daemon before nodes) is handed back", async () => {
    const [job] = await enqueue(store, 1);
    await raw.query(`UPDATE jobs SET status = 'running', attempts = 1, owner = $1 WHERE id = $2`, [randomUUID(), job!.id]);
    expect(await store.nodes.rescueDead({ now: T0, self: "me", silentMs: 1500, leaseMs: TEST_LEASE_MS })).toEqual({ nodes: [], interrupted: 1, cancelled: 0 });
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "pending", attempts: 1 });
  });

  it("a node that leaves hands back what still runs for it", async () => {
    const s = await store.nodes.register(who("bye"), TEST_LEASE_MS);
    const [job] = await enqueue(store, 1);
    await claim(store, "bye");
    await s.leave(T0);
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "pending", attempts: 1, errors: [{ attempt: 1 }] });
    expect(await store.nodes.list()).toEqual([]);
  });
});
