// What only the PostgreSQL store has to say: a database that cannot be reached is a clear
// StoreError naming the host and the reason, within the connect timeout, and never shows the
// password; several daemons starting at once migrate once; task events get their ids in
// commit order (the gap-free cursor).

import { inspect } from "node:util";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import pg from "pg";
import { POSTGRES_SKIPPED, PG_TEST_URL, pgUrlFor, postgresFactory, type StoreFixture } from "./factory.js";
import { newTask, storeError, T0 } from "./suite.js";
import { boardPortAt, openStore } from "../../src/store/index.js";
import { redactUrl } from "../../src/store/postgres/index.js";
import { loadMigrations } from "../../src/store/postgres/migrate.js";
import { taskEventPolicy } from "../../src/board/task-events.js";

const opts = { durability: "process" as const, taskEvents: taskEventPolicy };
const SECRET = "s3cret-Pa55word";

/** Where nothing listens: a port refused at once. */
const REFUSED = `postgres://teamwork:${SECRET}@127.0.0.1:1/board`;

/** Neither the message nor anything a log would print of the error holds the password. */
function expectNoSecret(err: unknown): void {
  expect(String(err)).not.toContain(SECRET);
  expect(inspect(err, { depth: 10 })).not.toContain(SECRET);
  expect(JSON.stringify(err)).not.toContain(SECRET);
}

describe("postgres: database URLs and unreachable databases (no server needed)", () => {
  it("a refused connection: unreachable, with the host, port and reason, and never the password", async () => {
    const started = Date.now();
    const err = await storeError(openStore({ kind: "postgres", url: REFUSED }, opts), "unreachable");
    expect(err.reason).toBe("teamwork@127.0.0.1:1/board: connection refused (ECONNREFUSED)");
    expect(err.outcome).toBe("none");
    expectNoSecret(err);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("the board port on an unreachable database: the same neutral error", async () => {
    const err = await boardPortAt({ kind: "postgres", url: REFUSED }).task(1).then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ name: "StoreError", kind: "unreachable" });
    expect((err as Error).message).toMatch(/127\.0\.0\.1:1.*connection refused/);
    expectNoSecret(err);
  });

  it("a URL that is not valid is refused without being echoed", async () => {
    const err = await storeError(openStore({ kind: "postgres", url: `postgres://teamwork:${SECRET}@[nohost/board` }, opts), "unavailable");
    expect(err.reason).toMatch(/not valid/);
    expectNoSecret(err);
  });

  it("redactUrl keeps who, where and which database; never the password or the options", () => {
    expect(redactUrl(`postgres://teamwork:${SECRET}@db.example:6543/board?sslmode=require`)).toBe("postgres://teamwork@db.example:6543/board");
    expect(redactUrl(`postgresql://teamwork:${encodeURIComponent("p@ss/w:rd")}@db/board`)).toBe("postgres://teamwork@db:5432/board");
    expect(redactUrl("not a url")).not.toContain("not a url");
  });
});

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres: on the local server", () => {
  let f: StoreFixture | undefined;
  const extra: string[] = [];
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
    const admin = new pg.Client({ connectionString: PG_TEST_URL });
    await admin.connect();
    for (const db of extra.splice(0)) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  });

  it("a database that does not exist: unavailable, naming it and the server", async () => {
    const url = pgUrlFor(`tw_test_missing_${randomBytes(4).toString("hex")}`);
    const err = await storeError(openStore({ kind: "postgres", url }, opts), "unavailable");
    expect(err.reason).toMatch(/does not exist/);
    expect(err.reason).toMatch(/127\.0\.0\.1:5432/);
  });

  it("6 daemons opening a fresh database at the same moment: it is migrated once, and all of them open", async () => {
    const db = `tw_test_${randomBytes(6).toString("hex")}`;
    extra.push(db);
    const admin = new pg.Client({ connectionString: PG_TEST_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    const location = { kind: "postgres" as const, url: pgUrlFor(db) };
    const stores = await Promise.all(Array.from({ length: 6 }, () => openStore(location, opts)));
    try {
      const c = new pg.Client({ connectionString: location.url });
      await c.connect();
      const versions = (await c.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")).rows.map((r) => r.version);
      await c.end();
      expect(versions).toEqual(loadMigrations().map((m) => m.version));
      expect((await stores[5]!.boards.list()).map((b) => b.name)).toEqual(["default"]);
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it("task events get their ids in commit order: a write waits while another holds the events' lock, and no reader sees past a gap", async () => {
    f = await postgresFactory.create();
    const { store, location } = f;
    if (location.kind !== "postgres") throw new Error("unreachable");
    const before = await store.tasks.create(newTask({ title: "before" }), T0);
    // Another writer in the middle of its event insert: holds the lock until it commits.
    const holder = new pg.Client({ connectionString: location.url });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT pg_advisory_xact_lock(4243, 1)");
    const writing = store.tasks.create(newTask({ title: "waits" }), T0 + 1);
    // Wait until the write is seen queued behind the lock (an event that proves it waits).
    for (;;) {
      const waiting = await holder.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 4243 AND objid = 1");
      if (waiting.rows[0].n > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    // The task row is written but not its events: a reader sees neither (one transaction).
    expect((await store.taskEvents.list({ afterId: 0 })).map((e) => e.taskId)).toEqual([before.id]);
    await holder.query("COMMIT");
    await holder.end();
    const t = await writing;
    expect((await store.taskEvents.list({ afterId: 0 })).map((e) => e.taskId)).toEqual([before.id, t.id]);
  });
});
