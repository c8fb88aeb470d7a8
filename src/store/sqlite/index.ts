import type { Store, StoreOptions } from "../types.js";
import { openDatabase, type Db } from "./open.js";
import { guarded, sqliteFailure } from "./errors.js";
import { sqliteBoards } from "./boards.js";
import { sqliteTaskEvents, sqliteTasks } from "./tasks.js";
import { sqliteJobs } from "./jobs.js";
import { sqliteMeta, sqliteSchedules } from "./schedules.js";
import { sqliteAttachments } from "./attachments.js";

/**
 * The SQLite store. Every error it gives, opening included, is a StoreError where SQLite
 * said no (sqlite/errors.ts): no SQLite code leaves this folder.
 */
export async function openSqliteStore(path: string, opts: StoreOptions): Promise<Store> {
  let db: Db | undefined;
  try {
    db = openDatabase(path, opts);
    return storeOn(db, opts, path);
  } catch (err) {
    if (db?.open) db.close();
    throw sqliteFailure(err);
  }
}

/** Prepares every statement (which reads the schema: a damaged one fails here, at open). */
function storeOn(db: Db, opts: StoreOptions, where: string): Store {
  return {
    boards: guarded(sqliteBoards(db)),
    tasks: guarded(sqliteTasks(db, opts.taskEvents)),
    taskEvents: guarded(sqliteTaskEvents(db)),
    jobs: guarded(sqliteJobs(db)),
    schedules: guarded(sqliteSchedules(db)),
    meta: guarded(sqliteMeta(db)),
    attachments: guarded(sqliteAttachments(db)),
    // One daemon per SQLite database: its bus is the source of its event streams.
    events: null,
    where,
    async serveAsDaemon() {},
    async close() {
      if (db.open) db.close();
    },
  };
}
