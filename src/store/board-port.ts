// What a job handler may read of the board: ctx.board. Read-only and async, so that every
// store can serve it (SQLite from a read-only connection of the worker's own; PostgreSQL from
// a pool), and the handler never learns which database it reads or where it lives.
//
// A handler that reads a lot (the report) reads through one snapshot: every read in it sees
// the board as it was at one moment, while the daemon keeps writing. Tasks stream in pages,
// so a board of any size is read in flat memory.

import type { Json, TaskEvent, TaskStatus } from "../protocol/types.js";

/** A task as a mail describes it. */
export interface BoardTask {
  id: number;
  title: string;
  description: string;
  board: string;
  status: TaskStatus;
  assignee: string | null;
  /** YYYY-MM-DD, or null. */
  dueDate: string | null;
}

/** A task as a board-wide read streams it: without its description. */
export type BoardTaskRow = Omit<BoardTask, "description" | "board">;

export interface BoardEventRow {
  taskId: number;
  type: TaskEvent["type"];
  /** The task's title when the event happened. */
  title: string;
  /** ms since the epoch. */
  createdAt: number;
}

/** One board, read at one moment. Valid only inside the read that handed it over. */
export interface BoardSnapshot {
  board: string;
  /** How many tasks the board has, in this snapshot (agrees with tasks()). */
  taskCount: number;
  /** The board's tasks in id order, streamed in pages: memory stays flat however many. */
  tasks(): AsyncIterable<BoardTaskRow>;
  /** The board's task events at or after a time (ms), oldest first, streamed. */
  eventsSince(sinceMs: number): AsyncIterable<BoardEventRow>;
}

export interface BoardPort {
  /** One task with its board's name, or null if there is no such task. */
  task(id: number): Promise<BoardTask | null>;
  /**
   * Runs `read` over one consistent snapshot of the named board and returns what it returns;
   * null if there is no such board. One read at a time per port.
   */
  readBoard<T>(name: string, read: (snapshot: BoardSnapshot) => Promise<T>): Promise<T | null>;
  /** Task events of every board after an event id (the cursor), oldest first, at most `limit`. */
  eventsAfter(afterId: number, limit: number): Promise<TaskEvent[]>;
  /** A value the daemon keeps in the store's meta table (the digest's cursor), or null. */
  meta(key: string): Promise<Json | null>;
}

