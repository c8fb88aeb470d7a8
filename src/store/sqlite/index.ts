import type { Store, StoreOptions } from "../types.js";
import { openDatabase, type Db } from "./open.js";
import { guarded, sqliteFailure } from "./errors.js";
import { sqliteBoards } from "./boards.js";
import { sqliteTaskEvents, sqliteTasks } from "./tasks.js";
import { sqliteJobs } from "./jobs.js";
import { sqliteMeta, sqliteSchedules } from "./schedules.js";
import { sqliteAttachments } from "./attachments.js";
import { sqliteNodes } from "./nodes.js";
import { sqliteFiles } from "./files.js";

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
  const jobs = guarded(sqliteJobs(db));
  return {
    boards: guarded(sqliteBoards(db)),
    tasks: guarded(sqliteTasks(db, opts.taskEvents)),
    taskEvents: guarded(sqliteTaskEvents(db)),
    jobs,
    schedules: guarded(sqliteSchedules(db)),
    meta: guarded(sqliteMeta(db)),
    attachments: guarded(sqliteAttachments(db)),
    nodes: guarded(sqliteNodes(db, jobs)),
    files: guarded(sqliteFiles(db)),
    // One daemon per SQLite database: its bus is the source of its event streams.
    events: null,
    where,
    async close() {
      if (db.open) db.close();
    },
  };
}
