import Database from "better-sqlite3";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TeamworkError } from "../../lib/errors.js";

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
 * Opens (creating if needed) the database, sets the pragmas durability asks for, and
 * migrates it forward. A database whose schema is newer than this build knows is refused
 * with schema_too_new: it is never migrated down or reset.
 */
export function openDatabase(path: string, opts: { durability: "full" | "process" }): Db {
  const db = new Database(path);
  try {
    // Before anything writes (even the WAL switch rewrites the header): refuse a newer schema.
    refuseNewer(db, loadMigrations());
    db.pragma("journal_mode = WAL");
    // WAL + FULL fsyncs the log on every commit: a commit that returned is on disk.
    // WAL + NORMAL fsyncs only at checkpoints: safe against a process crash, not a power cut.
    db.pragma(`synchronous = ${opts.durability === "full" ? "FULL" : "NORMAL"}`);
    db.pragma("foreign_keys = ON");
    // SQLite waits for another process's lock inside the call, on the daemon's only thread:
    // wait briefly, then refuse (503, "locked by another process") so that everything else
    // (health, reads, running jobs) keeps its answers; the engine tries its writes again.
    db.pragma("busy_timeout = 250");
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function refuseNewer(db: Db, migrations: Migration[]): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new TeamworkError(
      "schema_too_new",
      `the database was written by a newer teamwork (schema ${current}, this version knows up to ${latest})`,
      "upgrade teamwork, or point --home at another folder; the database was left untouched",
    );
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
