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

/**
 * How long the server lets a work-pool transaction sit idle between its statements before it
 * ends the session. A transaction cut off mid-way (a network blackhole, a frozen daemon) keeps
 * its locks until then: the rows it wrote, and the KEY SHARE a claim takes on its node's row,
 * which makes rescue (FOR UPDATE SKIP LOCKED) pass that node over. Measured with 5 s (the
 * design's figure): of 10 blackholes of a node of 3 in `node bench/scale-out.mjs`, 4 resumed
 * after 5.0–5.4 s instead of 2.9–3.3 (the one examined: the node's tick, sent as the blackhole
 * began, failed "no answer within 4 s"; rescue found the node dead only once the server had
 * ended that tick's session).
 * At 2 s, no later than a cut-off node fences itself (SELF_FENCE_MS) and before its lease can
 * lapse, the lock is gone when rescue looks. A healthy daemon never waits between two
 * statements of one transaction for more than its own next step; one that stalls that long is
 * told its transaction is over and tries the write again (nothing was applied).
 */
export const IDLE_IN_TRANSACTION_MS = 2000;
/** The same bound for a board snapshot (read only, no row locks, held across a handler's awaits). */
export const SNAPSHOT_IDLE_MS = 5000;

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
    // Deadlines of every statement (see "checked-out clients and statement deadlines" below).
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: ANSWER_TIMEOUT_MS,
    // A transaction is never held open across anything but its own statements. One left open
    // by a frozen or cut-off daemon holds its rows (and its node's, against rescue) until the
    // server ends it (IDLE_IN_TRANSACTION_MS). A snapshot of the board port is held across a
    // handler's awaits and holds no row: it keeps the longer SNAPSHOT_IDLE_MS.
    idle_in_transaction_session_timeout: opts.readOnly ? SNAPSHOT_IDLE_MS : IDLE_IN_TRANSACTION_MS,
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

// ---- checked-out clients and statement deadlines (issue: PostgreSQL robustness) ----
//
// A client checked out of a pool has no 'error' listener of the pool's (pg-pool removes its
// own while the client is out): an error the server or the network raises between two
// statements (pg_terminate_backend, a reset) would be thrown out of the socket's event and end
// the process. Every checkout goes through checkout(), which listens for as long as the client
// is out and hands a broken client back with its error, so that the pool discards it.
//
// Deadlines. Every pooled statement has two:
// - the server's, statement_timeout (STATEMENT_TIMEOUT_MS): a statement that runs too long is
//   cancelled by the server, the transaction is rolled back (nothing applied: certain), and the
//   connection stays usable;
// - the client's, query_timeout (ANSWER_TIMEOUT_MS, a second later): no answer at all, not
//   even the server's cancel. The network or the server is gone (a partition, a frozen host);
//   the statement fails "database unreachable" and its connection is discarded (it has a
//   statement in flight that may yet be answered).
// So that a request under a blackhole is answered by the daemon, with the reason, before the
// CLI gives up on it (10 s: commands/context.ts CLI_TIMEOUT_MS): one statement's 4 s, or a
// connection's 5 s (CONNECT_TIMEOUT_MS); an enqueue waiting behind a tick in flight, both.
// What is legitimately longer says so with its own deadline (longStatement): a file's bytes
// (by size), a prune, a migration.
//
// Outcome of a write whose statement got no answer (or whose connection was lost with it in
// flight): inside a transaction before COMMIT was sent, nothing was applied (the connection is
// closed without COMMIT: the server rolls back); a COMMIT, or a single statement outside a
// transaction, may have been applied: the StoreError says the outcome is unknown.

/** The server cancels a pooled statement that runs longer than this (statement_timeout). */
export const STATEMENT_TIMEOUT_MS = 3000;
/** How much longer the client waits for any answer (the server's cancel included) before it calls the database unreachable. */
export const ANSWER_MARGIN_MS = 1000;
/** The client's deadline for an answer to a pooled statement (query_timeout). */
export const ANSWER_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + ANSWER_MARGIN_MS;

/** A statement that got no answer within its deadline: the database is unreachable (or frozen). */
export class NoAnswer extends Error {
  override readonly name = "NoAnswer";
  constructor(readonly ms: number) {
    super(`no answer within ${formatSeconds(ms)}`);
  }
}

const formatSeconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** pg's own error for a statement past its query_timeout (client/lib/client.js). */
export function isNoAnswer(err: unknown): boolean {
  return err instanceof NoAnswer || (err instanceof Error && err.message === "Query read timeout");
}

/**
 * Errors of writes known not to have been applied although their connection failed: a
 * statement of a transaction whose COMMIT was never sent. (errors.ts reads it for the outcome.)
 */
export const notApplied = new WeakSet<object>();

export interface Checkout {
  readonly client: pg.PoolClient;
  /** The error the connection raised while out (the server ended it, the network dropped it), if any. */
  lost(): Error | undefined;
  /** Hands the client back; with an error (or if it was lost), the pool discards it. Idempotent. */
  release(err?: Error): void;
}

/** A client out of the pool, listened to while out (see above). */
export async function checkout(pool: pg.Pool): Promise<Checkout> {
  const client = await pool.connect();
  let lost: Error | undefined;
  let released = false;
  const onError = (err: Error) => {
    lost ??= err;
  };
  client.on("error", onError);
  return {
    client,
    lost: () => lost,
    release(err) {
      if (released) return;
      released = true;
      client.removeListener("error", onError);
      client.release(lost ?? err);
    },
  };
}

type Queryable = Pick<pg.ClientBase, "query">;
type TimedQuery = pg.QueryConfig & { query_timeout?: number };

/**
 * A statement allowed `ms` (inside a transaction: SET LOCAL reaches to its end): the server
 * cancels it after `ms`, the client gives up ANSWER_MARGIN_MS later (NoAnswer). Its message
 * may take that long to arrive, too (a file's bytes over a slow network): while the server
 * reads it, it counts as idle in the transaction, so the idle bound (IDLE_IN_TRANSACTION_MS)
 * is raised to `ms` as well.
 */
export async function longStatement<R extends pg.QueryResultRow>(c: Queryable, ms: number, query: pg.QueryConfig): Promise<pg.QueryResult<R>> {
  const limit = Math.ceil(ms);
  await c.query(`SET LOCAL statement_timeout = ${limit}; SET LOCAL idle_in_transaction_session_timeout = ${limit}`);
  const timed: TimedQuery = { ...query, query_timeout: limit + ANSWER_MARGIN_MS };
  try {
    return await c.query<R>(timed);
  } catch (err) {
    throw isNoAnswer(err) ? new NoAnswer(limit + ANSWER_MARGIN_MS) : err;
  }
}

/**
 * How long a prune may take: it deletes whatever has aged out since the last one, which on a
 * busy queue is many rows (each with its logs and files).
 */
export const PRUNE_STATEMENT_MS = 120_000;

/** One long statement in a transaction of its own (a prune), allowed `ms`. */
export function longWrite<R extends pg.QueryResultRow>(pool: pg.Pool, ms: number, query: pg.QueryConfig): Promise<pg.QueryResult<R>> {
  return inTransaction(pool, (c) => longStatement<R>(c, ms, query));
}

/**
 * Runs `fn` in one transaction on one pooled client: committed if it returns, rolled back if
 * it throws. A connection that failed, or a statement that got no answer, is not rolled back
 * on (a ROLLBACK would wait behind the statement in flight): the client is discarded, and the
 * server, seeing the connection close without a COMMIT, rolls back.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, begin = "BEGIN"): Promise<T> {
  const out = await checkout(pool);
  const c = out.client;
  let committing = false;
  let broken: Error | undefined;
  try {
    await c.query(begin);
    const result = await fn(c);
    committing = true;
    await c.query("COMMIT");
    return result;
  } catch (thrown) {
    // The connection's own error says why better than "not queryable" after it.
    const err = out.lost() ?? thrown;
    if (!committing && typeof err === "object" && err !== null) notApplied.add(err);
    if (out.lost() || isNoAnswer(thrown)) broken = err instanceof Error ? err : new Error(String(err));
    else {
      try {
        await c.query("ROLLBACK");
      } catch (e) {
        // The connection is gone or unusable: it is destroyed, not put back in the pool.
        broken = e instanceof Error ? e : new Error(String(e));
      }
    }
    throw err;
  } finally {
    out.release(broken);
  }
}
// ---- end checked-out clients and statement deadlines

/** A time for a parameter (timestamptz), from epoch ms. */
export const ts = (ms: number): Date => new Date(ms);
export const tsOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));
