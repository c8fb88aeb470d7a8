// The SQLite store's boundary for errors: what SQLite says becomes a StoreError of one kind
// (store/errors.ts). Only this file reads SQLite's result codes.

import Database from "better-sqlite3";
import { StoreError, type StoreErrorKind } from "../errors.js";

/**
 * SQLite's primary result codes (the part before an extended code's suffix, such as
 * SQLITE_BUSY_SNAPSHOT) by kind. Any other code (SQLITE_ERROR, SQLITE_CONSTRAINT, ...) is
 * unavailable too: the database refused, for a reason no kind names (damage SQLite reports
 * as a plain error, such as "malformed JSON" in a damaged row, or a bug of ours); the reason
 * says which, and the request is still refused with nothing changed.
 */
const KIND_OF: Record<string, StoreErrorKind> = {
  SQLITE_BUSY: "busy",
  SQLITE_LOCKED: "busy",
  SQLITE_FULL: "full",
  SQLITE_CORRUPT: "corrupt",
  SQLITE_NOTADB: "corrupt",
  SQLITE_READONLY: "readonly",
};

const primary = (code: string) => /^SQLITE_[A-Z]+/.exec(code)?.[0] ?? code;

/** The StoreError for an error SQLite raised; any other error is returned as it is. */
export function sqliteFailure(err: unknown): unknown {
  if (err instanceof Database.SqliteError) {
    return new StoreError(KIND_OF[primary(err.code)] ?? "unavailable", err.message, { driverCode: err.code, cause: err });
  }
  // A call after close (a request that raced the daemon's stop).
  if (err instanceof TypeError && /database connection is not open/.test(err.message)) {
    return new StoreError("unavailable", "the store is closed", { cause: err });
  }
  return err;
}

/**
 * The same methods, each with its errors turned into StoreErrors: those thrown, those of the
 * promise it returns, and those met while iterating an async iterable it returns.
 */
export function guarded<T extends object>(impl: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(impl)) {
    out[name] = typeof value === "function" ? guard(impl, value as (...args: unknown[]) => unknown) : value;
  }
  return out as T;
}

function guard(self: object, fn: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
  return (...args) => {
    let result: unknown;
    try {
      result = fn.apply(self, args);
    } catch (err) {
      throw sqliteFailure(err);
    }
    if (result instanceof Promise) return result.catch(rethrow);
    if (isAsyncIterable(result)) return iterateGuarded(result);
    return result;
  };
}

const rethrow = (err: unknown): never => {
  throw sqliteFailure(err);
};

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> =>
  typeof v === "object" && v !== null && typeof (v as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === "function";

async function* iterateGuarded<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    throw sqliteFailure(err);
  }
}
