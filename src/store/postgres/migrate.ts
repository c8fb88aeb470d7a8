// Numbered migrations for PostgreSQL (migrations/NNN_name.sql), applied in order, each
// recorded in schema_migrations; one whose number is below the latest applied but that was
// never applied (a gap filled later) is applied too. Several daemons may start at once against one database:
// the migration runs in one transaction under a transaction-level advisory lock, so one of
// them migrates and the others, once it commits, find nothing left to do. A database whose
// schema is newer than this build knows is refused (too_new) and left untouched.

import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { StoreError } from "../errors.js";
import { checkout, isNoAnswer, longStatement } from "./connect.js";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

/** Advisory lock keys, (namespace, key): teamwork's namespace on PostgreSQL. */
export const LOCK_NAMESPACE = 4243;
export const MIGRATE_LOCK = 0;
/** Held by every transaction that inserts task events, until it commits (tasks.ts). */
export const TASK_EVENTS_LOCK = 1;
// 2 was the one-daemon lock of the versions before nodes; keys from 16 on are nodes' (nodes.ts,
// migration 003: nodes_lock_key_seq).

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

/** The schema's version: 0 for a database teamwork never wrote. */
export async function schemaVersion(c: pg.ClientBase): Promise<number> {
  return Math.max(0, ...(await appliedVersions(c)));
}

/** The migrations a database has had (none for a database teamwork never wrote). */
async function appliedVersions(c: pg.ClientBase): Promise<Set<number>> {
  const present = await c.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!present.rows[0]!.present) return new Set();
  return new Set((await c.query<{ version: number }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version));
}

function refuseNewer(current: number, migrations: Migration[]): void {
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new StoreError("too_new", `the database was written by a newer teamwork (schema ${current}, this version knows up to ${latest})`);
  }
}

/**
 * How long a migration's statements may take (a migration may rewrite a big table), and how
 * long a daemon waits for another one's migration (the lock): far beyond a statement's usual
 * deadline (connect.ts STATEMENT_TIMEOUT_MS), still bounded.
 */
const MIGRATE_STATEMENT_MS = 10 * 60_000;

/** Migrates the database forward; returns the versions this call applied (none if another did). */
export async function migrate(pool: pg.Pool, migrations = loadMigrations()): Promise<number[]> {
  const out = await checkout(pool);
  const c = out.client;
  let broken: Error | undefined;
  try {
    // Up to date (the usual case): no lock taken, nothing written.
    const seen = await appliedVersions(c);
    refuseNewer(Math.max(0, ...seen), migrations);
    if (migrations.every((m) => seen.has(m.version))) return [];
    await c.query("BEGIN");
    try {
      // Another daemon migrating holds this until it commits: wait for it (longer than a
      // statement's lock_timeout), then look again.
      await c.query("SET LOCAL lock_timeout = '60s'");
      await longStatement(c, MIGRATE_STATEMENT_MS, { text: "SELECT pg_advisory_xact_lock($1, $2)", values: [LOCK_NAMESPACE, MIGRATE_LOCK] });
      await c.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
      );
      const done = await appliedVersions(c);
      refuseNewer(Math.max(0, ...done), migrations);
      const applied: number[] = [];
      // Every migration not applied yet, in order, a gap's too: numbers are handed out to work
      // that lands in any order (a database may have had 004 before 003 existed), so the test
      // is "not applied", never "above the highest applied".
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await longStatement(c, MIGRATE_STATEMENT_MS, { text: m.sql });
        await c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
        applied.push(m.version);
      }
      await c.query("COMMIT");
      return applied;
    } catch (err) {
      // Not on a connection that is gone, or has a statement in flight (a ROLLBACK would wait behind it).
      broken = out.lost() ?? (isNoAnswer(err) ? (err as Error) : undefined);
      if (!broken) await c.query("ROLLBACK").catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
      throw out.lost() ?? err;
    }
  } catch (err) {
    throw out.lost() ?? err;
  } finally {
    out.release(broken);
  }
}
