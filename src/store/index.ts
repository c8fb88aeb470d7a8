// Opening a store: the one place that knows which stores exist. Everything else takes the
// Store it returns and never learns its kind. A store's module (and its driver) is loaded
// only when that kind is asked for.

import type { FileStore, Store, StoreOptions } from "./types.js";
import type { BoardPort } from "./board-port.js";

/**
 * Where the data lives, by kind of store. Plain data: a worker thread or process is handed
 * it and opens its own connection (boardPortAt).
 * - sqlite: a database file of this host.
 * - postgres: a database URL (postgres://user[:password]@host[:port]/database[?options]),
 *   shared by every daemon of a team. The URL may carry the password: show it only through
 *   the PostgreSQL store's redactUrl, never as it is.
 */
export type StoreLocation = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

/**
 * Opens the store, creating and migrating it as needed. Fails with a StoreError
 * (store/errors.ts): too_new for a schema from a newer teamwork, corrupt, busy, ...
 */
export async function openStore(where: StoreLocation, opts: StoreOptions): Promise<Store> {
  switch (where.kind) {
    case "sqlite": {
      const { openSqliteStore } = await import("./sqlite/index.js");
      return openSqliteStore(where.path, opts);
    }
    case "postgres": {
      const { openPostgresStore } = await import("./postgres/index.js");
      return openPostgresStore(where.url, opts);
    }
  }
}

/**
 * The read-only board port (ctx.board) on the store at `where`. Nothing is opened until a
 * handler first reads: a worker whose jobs never read the board never connects.
 */
export function boardPortAt(where: StoreLocation): BoardPort {
  let opened: Promise<BoardPort> | undefined;
  const port = (): Promise<BoardPort> =>
    (opened ??= (async () => {
      switch (where.kind) {
        case "sqlite": {
          const { openSqliteBoardPort } = await import("./sqlite/board-port.js");
          return openSqliteBoardPort(where.path);
        }
        case "postgres": {
          const { openPostgresBoardPort } = await import("./postgres/board-port.js");
          return openPostgresBoardPort(where.url);
        }
      }
    })());
  return {
    task: async (id) => (await port()).task(id),
    readBoard: async (name, read) => (await port()).readBoard(name, read),
    eventsAfter: async (afterId, limit) => (await port()).eventsAfter(afterId, limit),
    meta: async (key) => (await port()).meta(key),
  };
}

/**
 * The files part (ctx.files: uploads to read, artifacts to write) on the store at `where`,
 * with a connection of the worker's own, opened on a handler's first use. The bytes go
 * between the worker and the database, never through the daemon's thread.
 */
export function filesPortAt(where: StoreLocation): FileStore {
  let opened: Promise<FileStore> | undefined;
  const port = (): Promise<FileStore> =>
    (opened ??= (async () => {
      switch (where.kind) {
        case "sqlite": {
          const { openSqliteFilesPort } = await import("./sqlite/files.js");
          return openSqliteFilesPort(where.path);
        }
        case "postgres": {
          const { openPostgresFilesPort } = await import("./postgres/files.js");
          return openPostgresFilesPort(where.url);
        }
      }
    })());
  return {
    putArtifact: async (at, file, now) => (await port()).putArtifact(at, file, now),
    get: async (owner, name) => (await port()).get(owner, name),
    list: async (owner) => (await port()).list(owner),
    open: async (id) => (await port()).open(id),
    readAll: async (id) => (await port()).readAll(id),
    readUpload: async (id) => (await port()).readUpload(id),
  };
}
