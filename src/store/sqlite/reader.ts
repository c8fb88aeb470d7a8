// A read-only connection for jobs that read a lot (reports) from a worker thread. WAL lets
// it read a consistent snapshot while the daemon keeps writing.

import Database from "better-sqlite3";
import type { TaskEvent } from "../../protocol/types.js";

export interface TaskRowLite {
  id: number;
  title: string;
  status: "todo" | "doing" | "done";
  assignee: string | null;
  due_date: string | null;
}

export interface EventRowLite {
  task_id: number;
  type: string;
  title: string;
  created_at: number;
}

export class BoardReader {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path, { readonly: true, fileMustExist: true });
    this.db.pragma("busy_timeout = 5000");
  }

  board(name: string): { id: number; name: string } | undefined {
    return this.db.prepare<[string], { id: number; name: string }>("SELECT id, name FROM boards WHERE name = ?").get(name);
  }

  /** Runs fn inside one read transaction, so every query sees the same snapshot. */
  snapshot<T>(fn: () => T): T {
    return this.db.transaction(fn).deferred();
  }

  countTasks(boardId: number): number {
    return this.db.prepare<[number], { n: number }>("SELECT count(*) AS n FROM tasks WHERE board_id = ?").get(boardId)!.n;
  }

  /** Streams the board's tasks in id order without loading them all. */
  tasks(boardId: number): IterableIterator<TaskRowLite> {
    return this.db.prepare<[number], TaskRowLite>("SELECT id, title, status, assignee, due_date FROM tasks WHERE board_id = ? ORDER BY id").iterate(boardId);
  }

  events(boardId: number, since: number): IterableIterator<EventRowLite> {
    return this.db
      .prepare<[number, number], EventRowLite>("SELECT task_id, type, title, created_at FROM task_events WHERE board_id = ? AND created_at >= ? ORDER BY id")
      .iterate(boardId, since);
  }

  meta(key: string): unknown {
    const r = this.db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?").get(key);
    return r ? JSON.parse(r.value) : null;
  }

  /** Task events of every board after an id, oldest first, in the wire shape. */
  eventsAfter(afterId: number, limit: number): TaskEvent[] {
    return this.db
      .prepare<[number, number], { id: number; task_id: number; board: string; type: TaskEvent["type"]; title: string; data: string; created_at: number }>(
        "SELECT e.*, b.name AS board FROM task_events e JOIN boards b ON b.id = e.board_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
      )
      .all(afterId, limit)
      .map((r) => ({ id: r.id, taskId: r.task_id, board: r.board, type: r.type, title: r.title, data: JSON.parse(r.data) as TaskEvent["data"], createdAt: new Date(r.created_at).toISOString() }));
  }

  close(): void {
    this.db.close();
  }
}
