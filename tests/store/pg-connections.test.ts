// The PostgreSQL store's connections when the server or the network fails them, on the real
// server (and through a fault proxy):
// - a session the server ends (pg_terminate_backend) while the store has it checked out of its
//   pool between two statements: nothing may end the process (a pg client with no 'error'
//   listener throws its error out of the socket's event: an uncaught exception); the call fails
//   with the store's neutral error; the broken connection is discarded, and the next call gets
//   a fresh one;
// - statement deadlines (connect.ts): the server cancels a statement past STATEMENT_TIMEOUT_MS
//   (unavailable, rolled back, the connection kept); one that gets no answer at all (a
//   blackhole) fails unreachable ANSWER_TIMEOUT_MS after it was sent, saying whether the write
//   may have been applied: not if its transaction's COMMIT was never sent, perhaps if it was.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import { POSTGRES_SKIPPED, PG_TEST_URL, postgresFactory, type StoreFixture } from "./factory.js";
import { newTask, T0 } from "./suite.js";
import { boardPortAt } from "../../src/store/index.js";
import { ANSWER_TIMEOUT_MS, createPool, IDLE_IN_TRANSACTION_MS, inTransaction, longStatement, SNAPSHOT_IDLE_MS, STATEMENT_TIMEOUT_MS, targetOf } from "../../src/store/postgres/connect.js";
import { LEASE_MS, SELF_FENCE_MS } from "../../src/queue/node-lease.js";
import { pgFailure } from "../../src/store/postgres/errors.js";
import { StoreError } from "../../src/store/errors.js";
import { waitFor } from "../helpers/wait.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";

/** Errors thrown out of an event (nobody to catch them) while a test runs. */
const uncaught: unknown[] = [];
const monitor = (err: unknown) => void uncaught.push(err);

/** Ends a session from outside, as an operator (or a failover) would, and waits until the server has let it go. */
async function terminate(pid: number): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  await admin.connect();
  try {
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    await waitFor(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rowCount === 0, { what: `session ${pid} to end`, timeoutMs: 10_000 });
  } finally {
    await admin.end();
  }
}

/** Resolves once the client has seen its connection close (after its error, if any). */
const ended = (c: pg.ClientBase) => new Promise<void>((resolve) => c.once("end", () => resolve()));

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres: a session the server ends while the store holds it", () => {
  let f: StoreFixture | undefined;
  const pools: pg.Pool[] = [];
  beforeEach(() => {
    uncaught.length = 0;
    process.on("uncaughtExceptionMonitor", monitor);
  });
  afterEach(async () => {
    process.off("uncaughtExceptionMonitor", monitor);
    for (const p of pools.splice(0)) await p.end().catch(() => {});
    await f?.cleanup();
    f = undefined;
  });

  const urlOf = (fx: StoreFixture) => (fx.location.kind === "postgres" ? fx.location.url : "");

  it("in a transaction, between two statements: the transaction fails unavailable, the process lives, the next one gets a fresh connection", async () => {
    f = await postgresFactory.create();
    const url = urlOf(f);
    // One connection: the next transaction can only work if the broken one was discarded.
    const pool = createPool(url, { durability: "process", max: 1 });
    pools.push(pool);
    let pid = 0;
    const err = await inTransaction(pool, async (c) => {
      pid = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      const gone = ended(c);
      await terminate(pid);
      await gone;
      await c.query("SELECT 1");
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(uncaught).toEqual([]);
    const e = pgFailure(err, targetOf(url));
    expect(e).toBeInstanceOf(StoreError);
    expect(e).toMatchObject({ kind: "unavailable" });
    expect((e as StoreError).message).toMatch(/terminating connection due to administrator command/);
    const next = await inTransaction(pool, async (c) => (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
    expect(next).not.toBe(pid);
  });

  it("a board port's snapshot, held across the handler's awaits: its next page fails unavailable, the process lives, the next read works", async () => {
    f = await postgresFactory.create();
    const url = urlOf(f);
    await f.store.boards.create("web", T0);
    for (let i = 0; i < 5; i++) await f.store.tasks.create(newTask({ title: `t${i}`, board: "web" }), T0);
    const port = boardPortAt(f.location);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    let err: unknown = null;
    try {
      await port.readBoard("web", async (snap) => {
        // The port's session is the one idle in a transaction now (the handler holds its snapshot).
        const pid = (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'")).rows[0]!.pid;
        await terminate(pid);
        try {
          for await (const t of snap.tasks()) void t;
        } catch (e) {
          err = e;
        }
      });
    } catch (e) {
      err ??= e;
    } finally {
      await admin.end();
    }
    expect(uncaught).toEqual([]);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ kind: "unavailable" });
    // The port's pool let the broken connection go: the next read gets a fresh one.
    const titles: string[] = [];
    await port.readBoard("web", async (snap) => {
      for await (const t of snap.tasks()) titles.push(t.title);
    });
    expect(titles).toEqual(["t0", "t1", "t2", "t3", "t4"]);
  });
});

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres: statement deadlines", () => {
  let f: StoreFixture | undefined;
  let proxy: FaultProxy | undefined;
  const pools: pg.Pool[] = [];
  beforeEach(() => {
    uncaught.length = 0;
    process.on("uncaughtExceptionMonitor", monitor);
  });
  afterEach(async () => {
    process.off("uncaughtExceptionMonitor", monitor);
    proxy?.heal();
    for (const p of pools.splice(0)) await p.end().catch(() => {});
    await proxy?.close();
    proxy = undefined;
    await f?.cleanup();
    f = undefined;
  });

  const setup = async () => {
    f = await postgresFactory.create();
    const url = f.location.kind === "postgres" ? f.location.url : "";
    const admin = new pg.Pool({ connectionString: url, max: 1 });
    admin.on("error", () => {});
    pools.push(admin);
    await admin.query("CREATE TABLE probe (id int PRIMARY KEY)");
    proxy = await startFaultProxy();
    const through = proxy.urlThrough(url);
    const pool = createPool(through, { durability: "process", max: 2 });
    pools.push(pool);
    return { admin, pool, target: targetOf(through), proxy };
  };
  const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);
  const rows = async (admin: pg.Pool) => (await admin.query<{ id: number }>("SELECT id FROM probe ORDER BY id")).rows.map((r) => r.id);

  it("a statement past the server's deadline is cancelled by it: unavailable, nothing applied, the connection kept", async () => {
    const { admin, pool, target } = await setup();
    const t0 = performance.now();
    const err = pgFailure(await failure(inTransaction(pool, async (c) => {
      await c.query("INSERT INTO probe VALUES (1)");
      await c.query(`SELECT pg_sleep(${(STATEMENT_TIMEOUT_MS + 2000) / 1000})`);
    })), target);
    const ms = performance.now() - t0;
    expect(err).toMatchObject({ name: "StoreError", kind: "unavailable", outcome: "none" });
    expect((err as StoreError).message).toMatch(/did not finish a statement in time \(canceling statement due to statement timeout\)/);
    expect(ms).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(ANSWER_TIMEOUT_MS);
    expect(await rows(admin)).toEqual([]);
    // What is allowed longer says so, and runs to its end.
    await inTransaction(pool, (c) => longStatement(c, STATEMENT_TIMEOUT_MS + 5000, { text: `SELECT pg_sleep(${(STATEMENT_TIMEOUT_MS + 1000) / 1000})` }));
    expect(uncaught).toEqual([]);
  }, 30_000);

  it("a transaction left idle between its statements (its daemon cut off or frozen) is ended by the server before the node's lease can lapse: its locks are gone when rescue looks", async () => {
    // Rescue passes over a node whose row is locked (a claim's KEY SHARE in a tick cut before
    // its COMMIT): the server must end such a transaction no later than the node fences itself.
    expect(IDLE_IN_TRANSACTION_MS).toBeLessThanOrEqual(SELF_FENCE_MS);
    const { admin, pool } = await setup();
    await admin.query("INSERT INTO probe VALUES (1)");
    const held = await pool.connect();
    held.on("error", () => {}); // the server ends its session
    const gone = ended(held);
    await held.query("BEGIN");
    // The server's clock on both sides: when the held transaction last spoke, when the row came free.
    const spoke = Number((await held.query<{ at: number }>("UPDATE probe SET id = 1 WHERE id = 1 RETURNING extract(epoch FROM clock_timestamp()) * 1000 AS at")).rows[0]!.at);
    const waiter = new pg.Client({ connectionString: f!.location.kind === "postgres" ? f!.location.url : "" });
    await waiter.connect();
    try {
      await waiter.query("SET lock_timeout = '20s'");
      const freed = Number((await waiter.query<{ at: number }>("UPDATE probe SET id = 1 WHERE id = 1 RETURNING extract(epoch FROM clock_timestamp()) * 1000 AS at")).rows[0]!.at);
      expect(freed - spoke).toBeGreaterThanOrEqual(IDLE_IN_TRANSACTION_MS - 50);
      expect(freed - spoke).toBeLessThan(LEASE_MS);
    } finally {
      await waiter.end();
    }
    await gone;
    held.release(true);
    // A board snapshot (read only, held across a handler's awaits) keeps the longer bound.
    const snapshots = createPool(f!.location.kind === "postgres" ? f!.location.url : "", { durability: "process", max: 1, readOnly: true });
    pools.push(snapshots);
    expect((await snapshots.query("SHOW idle_in_transaction_session_timeout")).rows[0].idle_in_transaction_session_timeout).toBe(`${SNAPSHOT_IDLE_MS / 1000}s`);
    expect(uncaught).toEqual([]);
  }, 30_000);

  it("a long statement whose bytes take longer to arrive than the idle bound (a file over a slow network) is waited for", async () => {
    const { admin, pool, proxy } = await setup();
    await admin.query("CREATE TABLE blob (b bytea NOT NULL)");
    const bytes = Buffer.alloc(4 << 20, 7);
    let calls = 0;
    await inTransaction(pool, (c) =>
      longStatement(
        {
          // The INSERT (longStatement's second statement) is held by the network for longer than
          // a transaction may otherwise sit idle: the server is reading nothing meanwhile.
          query: ((...args: Parameters<typeof c.query>) => {
            if (++calls === 2) {
              proxy.blackhole();
              setTimeout(() => proxy.heal(), IDLE_IN_TRANSACTION_MS + 1500);
            }
            return (c.query as (...a: unknown[]) => unknown)(...args);
          }) as typeof c.query,
        },
        30_000,
        { text: "INSERT INTO blob VALUES ($1)", values: [bytes] },
      ),
    );
    expect(calls).toBe(2);
    expect((await admin.query("SELECT length(b) AS n FROM blob")).rows).toEqual([{ n: bytes.length }]);
    expect(uncaught).toEqual([]);
  }, 30_000);

  it("no answer before the COMMIT (a blackhole): unreachable within the client's deadline, nothing applied, once the network heals too", async () => {
    const { admin, pool, target, proxy } = await setup();
    let sent = 0;
    const err = pgFailure(await failure(inTransaction(pool, async (c) => {
      await c.query("INSERT INTO probe VALUES (1)");
      proxy.blackhole();
      sent = performance.now();
      await c.query("INSERT INTO probe VALUES (2)");
    })), target);
    const ms = performance.now() - sent;
    expect(err).toMatchObject({ name: "StoreError", kind: "unreachable", outcome: "none" });
    expect((err as StoreError).message).toBe(`${target.where}: no answer within ${ANSWER_TIMEOUT_MS / 1000} s`);
    expect(ms).toBeGreaterThanOrEqual(ANSWER_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(ANSWER_TIMEOUT_MS + 2000);
    // The held statement reaches the server at heal, then the close: rolled back.
    proxy.heal();
    await waitFor(async () => (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'")).rows[0].n === 0, { what: "the cut-off transaction to end" });
    expect(await rows(admin)).toEqual([]);
    // The pool works again, on a fresh connection.
    await inTransaction(pool, (c) => c.query("INSERT INTO probe VALUES (3)"));
    expect(await rows(admin)).toEqual([3]);
    expect(uncaught).toEqual([]);
  }, 30_000);

  it("no answer to a COMMIT: unreachable, the outcome unknown (once the network heals it may turn out applied, or not)", async () => {
    const { admin, pool, target, proxy } = await setup();
    // The COMMIT itself held by the network: the server ends the idle transaction
    // (IDLE_IN_TRANSACTION_MS) before the COMMIT arrives at heal: nothing applied.
    const held = pgFailure(await failure(inTransaction(pool, async (c) => {
      await c.query("INSERT INTO probe VALUES (1)");
      proxy.blackhole();
    })), target);
    expect(held).toMatchObject({ name: "StoreError", kind: "unreachable", outcome: "unknown" });
    proxy.heal();
    await waitFor(async () => (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'")).rows[0].n === 0, { what: "the cut-off transaction to end" });
    expect(await rows(admin)).toEqual([]);
    // The COMMIT at the server, its answer held by the network: it commits. The client could not
    // know which of the two happened. (A deferred trigger keeps the COMMIT busy on the server
    // long enough to cut the network while it runs.)
    await admin.query("CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$");
    await admin.query("CREATE CONSTRAINT TRIGGER probe_slow_commit AFTER INSERT ON probe DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()");
    const lost = pgFailure(await failure(inTransaction(pool, async (c) => {
      await c.query("INSERT INTO probe VALUES (2)");
      void waitFor(async () => (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query = 'COMMIT'")).rows[0].n === 1, { what: "the COMMIT to run on the server", intervalMs: 20 }).then(() => proxy.blackhole(), () => {});
    })), target);
    expect(lost).toMatchObject({ name: "StoreError", kind: "unreachable", outcome: "unknown" });
    proxy.heal();
    await waitFor(async () => (await rows(admin)).length === 1, { what: "the COMMIT whose answer was lost to show applied" });
    expect(await rows(admin)).toEqual([2]);
    expect(uncaught).toEqual([]);
  }, 40_000);

  it("no answer to a statement outside a transaction: unreachable, the outcome unknown; a statement with no connection to go on: unreachable, nothing sent", async () => {
    const { pool, target, proxy } = await setup();
    await pool.query("SELECT 1");
    proxy.blackhole();
    const single = pgFailure(await failure(pool.query("INSERT INTO probe VALUES (1)")), target);
    expect(single).toMatchObject({ name: "StoreError", kind: "unreachable", outcome: "unknown" });
    // The pool's connection went with its statement: the next one must connect, and cannot.
    const t0 = performance.now();
    const fresh = pgFailure(await failure(pool.query("SELECT 1")), target);
    expect(fresh).toMatchObject({ name: "StoreError", kind: "unreachable", outcome: "none" });
    expect((fresh as StoreError).message).toMatch(new RegExp(`^${target.where.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: no connection`));
    expect(performance.now() - t0).toBeLessThan(ANSWER_TIMEOUT_MS + 3000);
    expect(uncaught).toEqual([]);
  }, 30_000);
});
