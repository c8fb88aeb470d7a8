import Database from "better-sqlite3";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { errorMessage } from "../../lib/errors.js";
import { StoreError } from "../errors.js";
import type { Durability, StoreOptions } from "../types.js";

export type Db = Database.Database;

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_.*\.sql$/.test(f))
    .sort()
    .map((name) => ({ version: Number(name.slice(0, 3)), name, sql: readFileSync(dir + name, "utf8") }));
}

/**
 * What durability means for SQLite. The database is always in WAL mode.
 * - full: synchronous = FULL fsyncs the log on every commit, so a commit that returned is on
 *   disk and survives a power cut.
 * - process: synchronous = NORMAL fsyncs only at checkpoints: a commit that returned is in
 *   the OS's cache, safe against a crash of the daemon, not of the OS or a power cut. The
 *   database stays consistent either way.
 */
const SYNCHRONOUS: Record<Durability, "FULL" | "NORMAL"> = { full: "FULL", process: "NORMAL" };

/**
 * Opens (creating if needed) the database, sets the pragmas durability asks for, and
 * migrates it forward. A database whose schema is newer than this build knows is refused
 * (StoreError too_new): it is never migrated down or reset. SQLite's own errors are left for
 * the caller (openSqliteStore) to turn into StoreErrors.
 */
export function openDatabase(path: string, opts: StoreOptions): Db {
  const db = connect(path);
  try {
    // Before anything writes (even the WAL switch rewrites the header): refuse a newer schema.
    refuseNewer(db, loadMigrations());
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${SYNCHRONOUS[opts.durability]}`);
    db.pragma("foreign_keys = ON");
    // SQLite waits for another process's lock inside the call, on the daemon's only thread:
    // wait briefly, then refuse (busy: a 503, "locked by another process") so that everything
    // else (health, reads, running jobs) keeps its answers; the engine tries its writes again.
    db.pragma("busy_timeout = 250");
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The connection; the driver refuses some paths before SQLite sees them (a missing folder). */
function connect(path: string): Db {
  try {
    return new Database(path);
  } catch (err) {
    if (err instanceof Database.SqliteError) throw err;
    throw new StoreError("unavailable", errorMessage(err), { cause: err });
  }
}

function refuseNewer(db: Db, migrations: Migration[]): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new StoreError("too_new", `the database was written by a newer teamwork (schema ${current}, this version knows up to ${latest})`);
  }
  return current;
}

export function migrate(db: Db, migrations = loadMigrations()): void {
  const current = refuseNewer(db, migrations);
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
}
