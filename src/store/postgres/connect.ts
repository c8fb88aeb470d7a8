// Connections to PostgreSQL: the database URL, what of it may be shown (never the password),
// the pool every store method borrows from, and a transaction on one pooled client.

import pg from "pg";
import type { Durability } from "../types.js";
import { StoreError } from "../errors.js";

/** What may be said about a database URL: who, where and which database; never the password. */
export interface Target {
  /** user@host:port/database, for messages and logs. */
  where: string;
  /** The password (if the URL has one), so that it can be scrubbed from any text we pass on. */
  secret: string | null;
}

/** The parts of a database URL that may be shown. A URL that cannot be parsed is refused without being echoed. */
export function targetOf(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreError("unavailable", "the database URL is not valid (expected postgres://user[:password]@host[:port]/database)");
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new StoreError("unavailable", `the database URL is not a PostgreSQL URL (it starts with "${u.protocol}//"; expected postgres://)`);
  }
  const user = decodeURIComponent(u.username) || "postgres";
  const host = u.searchParams.get("host") ?? (u.hostname || "localhost");
  const port = u.port || u.searchParams.get("port") || "5432";
  const database = decodeURIComponent(u.pathname.slice(1)) || user;
  const secret = (u.password ? decodeURIComponent(u.password) : null) ?? u.searchParams.get("password");
  return { where: `${user}@${host}:${port}/${database}`, secret: secret || null };
}

/** The URL as it may be shown: postgres://user@host:port/database, without password or options. */
export function redactUrl(url: string): string {
  try {
    return `postgres://${targetOf(url).where}`;
  } catch {
    return "(a database URL that is not valid)";
  }
}

/** Text with the password (plain or URL-encoded) and any `://user:password@` taken out. */
export function scrub(text: string, secret: string | null): string {
  let out = text.replace(/(\w+:\/\/[^:/@\s]*):[^@\s]*@/g, "$1:***@");
  if (secret) {
    for (const s of new Set([secret, encodeURIComponent(secret)])) out = out.split(s).join("***");
  }
  return out;
}

const timestamptz = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ);

/**
 * Values as the store speaks them: timestamptz as epoch ms (the Store's times), bigint ids and
 * counts as numbers (ids stay far below 2^53), json parsed. Per pool, never process-wide.
 */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === pg.types.builtins.TIMESTAMPTZ) return (v: string) => (timestamptz(v) as Date).getTime();
    if (oid === pg.types.builtins.INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * How long a statement waits for a lock another connection holds before it is refused busy
 * (lock_not_available): a write never hangs behind another process's long transaction; it is
 * refused with nothing changed, and may be tried again.
 */
export const LOCK_TIMEOUT_MS = 500;
/** How long opening a connection may take before the store says the database cannot be reached. */
export const CONNECT_TIMEOUT_MS = 5000;

/**
 * What durability means on PostgreSQL (the server's own guarantee is the team's to set):
 * - full: synchronous_commit = on: a commit that returned was flushed to the server's WAL.
 * - process: synchronous_commit = off: a commit returns before its WAL flush; a crash of the
 *   daemon loses nothing, a crash of the database server may lose its last ~0.6 s of commits
 *   (3 × wal_writer_delay), never its consistency.
 */
const SYNCHRONOUS_COMMIT: Record<Durability, "on" | "off"> = { full: "on", process: "off" };

export function createPool(url: string, opts: { durability: Durability; max: number; allowExitOnIdle?: boolean; readOnly?: boolean }): pg.Pool {
  // force_custom_plan: a named (prepared) statement is planned again at each run, with its
  // values and the table's size then, never with a generic plan kept from when the table was
  // small (measured on the job queue: a join kept as a scan of the whole table, which grew
  // with every job). Unnamed statements are planned each run anyway. Functions that must not
  // be planned per call say so themselves (jobs_claim, migration 002).
  const options = [`-c synchronous_commit=${SYNCHRONOUS_COMMIT[opts.durability]}`, "-c plan_cache_mode=force_custom_plan"];
  if (opts.readOnly) options.push("-c default_transaction_read_only=on");
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: opts.allowExitOnIdle ?? false,
    lock_timeout: LOCK_TIMEOUT_MS,
    // A transaction is never held open across anything but its own statements. One left open
    // by a frozen daemon holds its rows (and its node's, against rescue) until the server ends
    // it: within 5 s, as rescue's budget needs (SCALE-OUT.md §9.2).
    idle_in_transaction_session_timeout: 5_000,
    application_name: "teamwork",
    options: options.join(" "),
    types: TYPES,
  });
  // An idle pooled connection the server closed (restart, pg_terminate_backend, a dropped
  // database) is reported here; without a listener it would end the process. The pool drops
  // it, and the next query opens a fresh one (or fails then, with a StoreError).
  pool.on("error", () => {});
  return pool;
}

/** Runs `fn` in one transaction on one pooled client: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, begin = "BEGIN"): Promise<T> {
  const c = await pool.connect();
  let broken: Error | undefined;
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query("COMMIT");
    return out;
  } catch (err) {
    try {
      await c.query("ROLLBACK");
    } catch (e) {
      // The connection is gone or unusable: it is destroyed, not put back in the pool.
      broken = e instanceof Error ? e : new Error(String(e));
    }
    throw err;
  } finally {
    c.release(broken);
  }
}

/** A time for a parameter (timestamptz), from epoch ms. */
export const ts = (ms: number): Date => new Date(ms);
export const tsOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));
