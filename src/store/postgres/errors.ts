// The PostgreSQL store's boundary for errors: what PostgreSQL or the network says becomes a
// StoreError of one kind (store/errors.ts). Only this folder reads SQLSTATE codes, and every
// reason it passes on has the password scrubbed out.

import pg from "pg";
import { invalid } from "../../lib/errors.js";
import { StoreError, type StoreErrorKind } from "../errors.js";
import { ANSWER_TIMEOUT_MS, CONNECT_TIMEOUT_MS, isNoAnswer, NoAnswer, notApplied, scrub, type Target } from "./connect.js";

/**
 * SQLSTATE codes (https://www.postgresql.org/docs/15/errcodes-appendix.html) by kind. Any
 * other code is unavailable: the database refused, for a reason no kind names (a damaged
 * document, a value PostgreSQL cannot hold such as a NUL character, a bug of ours); the reason
 * says which, and the transaction was rolled back.
 */
const KIND_OF: Record<string, StoreErrorKind> = {
  "40001": "busy", // serialization_failure
  "40P01": "busy", // deadlock_detected
  "55P03": "busy", // lock_not_available: lock_timeout expired behind another connection's lock
  "57014": "busy", // query_canceled (statement_timeout, or cancelled by an operator)
  "53300": "busy", // too_many_connections
  "53100": "full", // disk_full
  "XX001": "corrupt", // data_corrupted ("invalid page in block ...")
  "XX002": "corrupt", // index_corrupted
  "25006": "readonly", // read_only_sql_transaction (a hot standby, default_transaction_read_only)
};

/** Network errors (Node's codes) in words, for "cannot reach PostgreSQL at HOST: WORDS". */
const NETWORK: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EHOSTDOWN: "host is down",
  ENOTFOUND: "unknown host",
  EAI_AGAIN: "the host name could not be resolved",
  ETIMEDOUT: "connection timed out",
  ECONNRESET: "connection reset by the server",
  EPIPE: "connection closed by the server",
  ENOENT: "no such socket",
  EACCES: "permission denied on the socket",
};

/** pg's own words for a connection it lost or could not make (then the statement may have been sent). */
const PG_LOST = /^(Connection terminated unexpectedly|Connection terminated$)/i;
/** pg's own words for a connection it could not make or a client it could not use (no statement was sent). */
const PG_NOT_SENT = /^(timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated due to connection timeout)/i;
/** Network errors of a connection already open: a statement may have been in flight. */
const LOST_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/** pg's words, in ours (the reason after "database unreachable: <server>: "). */
function wordsFor(message: string): string {
  if (/^timeout exceeded when trying to connect/i.test(message)) return `no connection free or opened within ${CONNECT_TIMEOUT_MS / 1000} s`;
  if (/^Connection terminated due to connection timeout/i.test(message)) return `no connection within ${CONNECT_TIMEOUT_MS / 1000} s`;
  if (/^Client has encountered a connection error/i.test(message)) return "the connection was lost";
  if (PG_LOST.test(message)) return "the connection was lost";
  return message;
}

/** The StoreError for an error PostgreSQL or the connection raised; any other error is returned as it is. */
export function pgFailure(err: unknown, target: Target): unknown {
  if (err instanceof StoreError) return err;
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? "";
    // PostgreSQL's text cannot hold U+0000 (SQLite's can): the caller's text, refused as such.
    if (code === "22021" && /0x00/.test(err.message)) {
      return invalid("text cannot contain the NUL character (U+0000) on a PostgreSQL store", "remove the NUL characters and try again");
    }
    // The server's own deadline (statement_timeout, connect.ts): it cancelled the statement and
    // rolled its transaction back; the server is there, just too slow for this statement.
    if (code === "57014" && /statement timeout/i.test(err.message)) {
      return new StoreError("unavailable", `PostgreSQL at ${target.where} did not finish a statement in time (${scrub(err.message, target.secret)})`, { driverCode: code, cause: err });
    }
    const kind = KIND_OF[code] ?? "unavailable";
    const where = code.startsWith("08") || code === "3D000" || code.startsWith("28") || code.startsWith("57P") ? ` (PostgreSQL at ${target.where})` : "";
    return new StoreError(kind, scrub(err.message, target.secret) + where, { driverCode: code, cause: err });
  }
  // Unreachable: no connection, no answer, or a connection lost. A write's outcome is unknown
  // when its statement may have been sent and its answer never came, unless it was a statement
  // of a transaction whose COMMIT was never sent (connect.ts notApplied).
  const unknownIf = (sent: boolean) => (sent && !(typeof err === "object" && err !== null && notApplied.has(err)) ? "unknown" : "none");
  if (isNoAnswer(err)) {
    const words = err instanceof NoAnswer ? err.message : new NoAnswer(ANSWER_TIMEOUT_MS).message;
    return new StoreError("unreachable", `${target.where}: ${words}`, { cause: err, outcome: unknownIf(true) });
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && NETWORK[code]) {
    return new StoreError("unreachable", `${target.where}: ${NETWORK[code]} (${code})`, { driverCode: code, cause: scrubbedCause(err, target), outcome: unknownIf(LOST_CODES.has(code)) });
  }
  if (err instanceof Error && (PG_LOST.test(err.message) || PG_NOT_SENT.test(err.message))) {
    return new StoreError("unreachable", `${target.where}: ${scrub(wordsFor(err.message), target.secret)}`, { cause: scrubbedCause(err, target), outcome: unknownIf(PG_LOST.test(err.message)) });
  }
  if (err instanceof Error && /^Client was closed/i.test(err.message)) {
    return new StoreError("unavailable", `the connection to PostgreSQL at ${target.where} was closed`, { cause: err });
  }
  return err;
}

/** A network error's own message names only host and port; kept as the cause, scrubbed to be sure. */
function scrubbedCause(err: unknown, target: Target): unknown {
  if (err instanceof Error && target.secret && err.message.includes(target.secret)) return new Error(scrub(err.message, target.secret));
  return err;
}

export interface GuardContext {
  target: Target;
  /** True once the store was closed: every later call is refused unavailable. */
  closed(): boolean;
}

/**
 * The same methods, each refusing once the store is closed and with its errors turned into
 * StoreErrors: those thrown, those of the promise it returns, and those met while iterating an
 * async iterable it returns.
 */
export function guarded<T extends object>(impl: T, ctx: GuardContext): T {
  const out: Record<string, unknown> = {};
  const fail = (err: unknown): never => {
    throw pgFailure(err, ctx.target);
  };
  for (const [name, value] of Object.entries(impl)) {
    if (typeof value !== "function") {
      out[name] = value;
      continue;
    }
    const fn = value as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]) => {
      if (ctx.closed()) return Promise.reject(new StoreError("unavailable", "the store is closed"));
      let result: unknown;
      try {
        result = fn.apply(impl, args);
      } catch (err) {
        fail(err);
      }
      if (result instanceof Promise) return result.catch(fail);
      if (isAsyncIterable(result)) return iterateGuarded(result, fail);
      return result;
    };
  }
  return out as T;
}

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> =>
  typeof v === "object" && v !== null && typeof (v as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === "function";

async function* iterateGuarded<T>(source: AsyncIterable<T>, fail: (err: unknown) => never): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    fail(err);
  }
}
