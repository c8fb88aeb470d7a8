// The stores the conformance suite runs against. Each entry opens a fresh, empty store of
// its kind (a temp SQLite file; a fresh PostgreSQL database) and says how to open a second
// handle on the same data (another connection, as a second daemon would have), so that races
// and fencing are tested across handles, not inside one.
//
// PostgreSQL: the local server of this machine kind (TOOLCHAIN.md), or TEAMWORK_TEST_PG_URL.
// Its suites run when it answers; when it does not they are skipped, saying so, unless CI is
// set or TEAMWORK_TEST_PG=1, where a PostgreSQL that does not answer fails every store suite.

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type StoreLocation } from "../../src/store/index.js";
import type { Store, StoreOptions } from "../../src/store/types.js";
import { taskEventPolicy } from "../../src/board/task-events.js";
import pg from "pg";

export interface StoreFixture {
  /** A store on the fixture's data. */
  store: Store;
  /** Where the data lives: what a second process would be given to open it. */
  location: StoreLocation;
  /** Another handle on the same data (its own connection). Closed by cleanup(). */
  openAnother(opts?: Partial<StoreOptions>): Promise<Store>;
  cleanup(): Promise<void>;
}

export interface StoreFactory {
  name: string;
  create(opts?: Partial<StoreOptions>): Promise<StoreFixture>;
}

const defaults: StoreOptions = { durability: "process", taskEvents: taskEventPolicy };

export const sqliteFactory: StoreFactory = {
  name: "sqlite",
  async create(opts = {}) {
    const dir = mkdtempSync(join(tmpdir(), "tw-store-"));
    const location: StoreLocation = { kind: "sqlite", path: join(dir, "teamwork.db") };
    const handles: Store[] = [];
    const open = async (o: Partial<StoreOptions> = {}) => {
      const s = await openStore(location, { ...defaults, ...opts, ...o });
      handles.push(s);
      return s;
    };
    const store = await open();
    return {
      store,
      location,
      openAnother: open,
      async cleanup() {
        for (const h of handles) await h.close().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** The server the PostgreSQL fixtures make their databases on (connected to its database "test"). */
export const PG_TEST_URL = process.env.TEAMWORK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Under CI, or asked for, a PostgreSQL that does not answer fails the suites instead of skipping them. */
export const PG_REQUIRED = process.env.TEAMWORK_TEST_PG === "1" || (process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "0" && process.env.CI !== "false");

/** The URL of another database on the same server. */
export function pgUrlFor(database: string, base = PG_TEST_URL): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Null if PostgreSQL answers at PG_TEST_URL, else why not. */
async function probePostgres(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (err) {
    const e = err as Error & { code?: string };
    return e.message || e.code || String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

const pgDown = await probePostgres();
if (pgDown !== null && PG_REQUIRED) {
  throw new Error(
    `PostgreSQL is required here (${process.env.TEAMWORK_TEST_PG === "1" ? "TEAMWORK_TEST_PG=1" : "CI is set"}) but does not answer at ${PG_TEST_URL.replace(/:[^:@/]*@/, ":***@")}: ${pgDown}. ` +
      "Start it (`pg_ctlcluster 15 main start`) or point TEAMWORK_TEST_PG_URL at one.",
  );
}

/**
 * Why the PostgreSQL suites are skipped, or null if they run. Printed by forEachStore as a
 * skipped suite, with how to run them.
 */
export const POSTGRES_SKIPPED: string | null =
  pgDown === null
    ? null
    : `PostgreSQL does not answer at ${PG_TEST_URL} (${pgDown}); start it with \`pg_ctlcluster 15 main start\` (or set TEAMWORK_TEST_PG_URL), and set TEAMWORK_TEST_PG=1 to make its absence a failure`;

if (POSTGRES_SKIPPED !== null) console.warn(`[store suites] PostgreSQL suites skipped: ${POSTGRES_SKIPPED}`);

/** One connection to the test server for making and dropping the fixtures' databases. */
let admin: pg.Pool | undefined;
const adminPool = () => {
  if (!admin) {
    admin = new pg.Pool({ connectionString: PG_TEST_URL, max: 1, allowExitOnIdle: true, connectionTimeoutMillis: 5000 });
    admin.on("error", () => {});
  }
  return admin;
};

export const postgresFactory: StoreFactory = {
  name: "postgres",
  async create(opts = {}) {
    const database = `tw_test_${randomBytes(6).toString("hex")}`;
    await adminPool().query(`CREATE DATABASE ${database}`);
    const location: StoreLocation = { kind: "postgres", url: pgUrlFor(database) };
    const handles: Store[] = [];
    const open = async (o: Partial<StoreOptions> = {}) => {
      const s = await openStore(location, { ...defaults, ...opts, ...o });
      handles.push(s);
      return s;
    };
    let store: Store;
    try {
      store = await open();
    } catch (err) {
      await adminPool().query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      throw err;
    }
    return {
      store,
      location,
      openAnother: open,
      async cleanup() {
        for (const h of handles) await h.close().catch(() => {});
        // FORCE: connections a test left open (a board port's pool) do not keep it alive.
        await adminPool().query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      },
    };
  },
};

/** Every store the suite runs for: SQLite always; PostgreSQL when it answers (see POSTGRES_SKIPPED). */
/**
 * A plain connection to a PostgreSQL fixture's database, for what a test reads or does beside
 * the store (locks, LISTEN, raw SQL); an error on it (the server ending it) is not a crash.
 */
export async function rawClient(f: StoreFixture): Promise<pg.Client> {
  if (f.location.kind !== "postgres") throw new Error(`not a PostgreSQL fixture: ${f.location.kind}`);
  const c = new pg.Client({ connectionString: f.location.url });
  c.on("error", () => {});
  await c.connect();
  return c;
}

export const STORE_FACTORIES: StoreFactory[] = pgDown === null ? [sqliteFactory, postgresFactory] : [sqliteFactory];
