import type { Store } from "../types.js";
import { openDatabase } from "./open.js";
import { sqliteBoards } from "./boards.js";
import { sqliteTaskEvents, sqliteTasks } from "./tasks.js";
import { sqliteJobs } from "./jobs.js";
import { sqliteMeta, sqliteSchedules } from "./schedules.js";
import { sqliteAttachments } from "./attachments.js";

export function openSqliteStore(path: string, opts: { durability: "full" | "process" }): Store {
  const db = openDatabase(path, opts);
  return {
    boards: sqliteBoards(db),
    tasks: sqliteTasks(db),
    taskEvents: sqliteTaskEvents(db),
    jobs: sqliteJobs(db),
    schedules: sqliteSchedules(db),
    meta: sqliteMeta(db),
    attachments: sqliteAttachments(db),
    async close() {
      if (db.open) db.close();
    },
  };
}
