// The board port on SQLite: a read-only connection of the worker's own (WAL lets it read
// while the daemon writes). A snapshot is one read transaction held across the handler's
// awaits; tasks come in keyset pages inside it, so memory stays flat and the pages agree.

import Database from "better-sqlite3";
import type { Json, TaskEvent } from "../../protocol/types.js";
import type { BoardEventRow, BoardPort, BoardSnapshot, BoardTask, BoardTaskRow } from "../board-port.js";
import { StoreError } from "../errors.js";
import { guarded, sqliteFailure } from "./errors.js";

/** Rows a page of tasks or events holds: large enough to amortise a query, small enough to stay flat. */
export const PAGE_ROWS = 2048;

export function openSqliteBoardPort(path: string): BoardPort {
  let db: Database.Database | null = null;
  let reading = false;
  const conn = (): Database.Database => {
    if (!db) {
      db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma("busy_timeout = 5000");
    }
    return db;
  };

  const port: BoardPort = {
    async task(id) {
      const row = conn()
        .prepare<[number], BoardTask>(
          `SELECT t.id, t.title, t.description, b.name AS board, t.status, t.assignee, t.due_date AS dueDate
           FROM tasks t JOIN boards b ON b.id = t.board_id WHERE t.id = ?`,
        )
        .get(id);
      return row ?? null;
    },

    async readBoard(name, read) {
      if (reading) throw new StoreError("busy", "a board read is already under way on this port (one at a time)");
      const d = conn();
      reading = true;
      d.exec("BEGIN");
      try {
        // The first read fixes the snapshot that every later read in this transaction sees.
        const board = d.prepare<[string], { id: number; name: string }>("SELECT id, name FROM boards WHERE name = ?").get(name);
        if (!board) return null;
        const taskCount = d.prepare<[number], { n: number }>("SELECT count(*) AS n FROM tasks WHERE board_id = ?").get(board.id)!.n;
        const tasksPage = d.prepare<[number, number, number], BoardTaskRow>(
          "SELECT id, title, status, assignee, due_date AS dueDate FROM tasks WHERE board_id = ? AND id > ? ORDER BY id LIMIT ?",
        );
        const eventsPage = d.prepare<[number, number, number, number], BoardEventRow & { id: number }>(
          "SELECT id, task_id AS taskId, type, title, created_at AS createdAt FROM task_events WHERE board_id = ? AND created_at >= ? AND id > ? ORDER BY id LIMIT ?",
        );
        let open = true;
        const live = () => {
          if (!open) throw new StoreError("unavailable", "a board snapshot was used after its read ended");
        };
        const snapshot: BoardSnapshot = {
          board: board.name,
          taskCount,
          tasks: () => paged(live, (after) => tasksPage.all(board.id, after, PAGE_ROWS), (t) => t),
          eventsSince: (sinceMs: number) =>
            paged(live, (after) => eventsPage.all(board.id, sinceMs, after, PAGE_ROWS), (e) => ({ taskId: e.taskId, type: e.type, title: e.title, createdAt: e.createdAt })),
        };
        try {
          return await read(snapshot);
        } finally {
          open = false;
        }
      } finally {
        if (d.inTransaction) d.exec("COMMIT");
        reading = false;
      }
    },

    async eventsAfter(afterId, limit) {
      return conn()
        .prepare<[number, number], { id: number; task_id: number; board: string; type: TaskEvent["type"]; title: string; data: string; created_at: number }>(
          "SELECT e.id, e.task_id, b.name AS board, e.type, e.title, e.data, e.created_at FROM task_events e JOIN boards b ON b.id = e.board_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
        )
        .all(afterId, limit)
        .map((r) => ({ id: r.id, taskId: r.task_id, board: r.board, type: r.type, title: r.title, data: JSON.parse(r.data) as TaskEvent["data"], createdAt: new Date(r.created_at).toISOString() }));
    },

    async meta(key) {
      const r = conn().prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?").get(key);
      return r ? (JSON.parse(r.value) as Json) : null;
    },
  };
  return guarded(port);
}

/**
 * Rows read page by page (keyset on id) as an async iterable. Named: a plain iterator, not an
 * async generator, because each row then costs one resolved promise instead of a generator's
 * queue (the report reads 300,000 rows of a 100,000-task board: bench/report-speed.mjs).
 */
function paged<R extends { id: number }, T>(live: () => void, page: (afterId: number) => R[], map: (row: R) => T): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      let rows: R[] = [];
      let i = 0;
      let after = 0;
      let last = false;
      const next = (): IteratorResult<T> => {
        if (i === rows.length) {
          if (last) return { done: true, value: undefined };
          live();
          rows = page(after);
          i = 0;
          last = rows.length < PAGE_ROWS;
          if (rows.length === 0) return { done: true, value: undefined };
          after = rows[rows.length - 1]!.id;
        }
        return { done: false, value: map(rows[i++]!) };
      };
      return {
        next: () => {
          try {
            return Promise.resolve(next());
          } catch (err) {
            return Promise.reject(sqliteFailure(err));
          }
        },
        return: () => {
          last = true;
          rows = [];
          i = 0;
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}
