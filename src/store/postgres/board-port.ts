// The board port on PostgreSQL: a small pool of the worker's own. A snapshot is one
// REPEATABLE READ READ ONLY transaction on one pooled client, held across the handler's
// awaits; tasks and events come in keyset pages inside it, so memory stays flat and every
// page agrees with the count.

import type pg from "pg";
import type { Json, TaskEvent } from "../../protocol/types.js";
import type { BoardEventRow, BoardPort, BoardSnapshot, BoardTask, BoardTaskRow } from "../board-port.js";
import { StoreError } from "../errors.js";
import { checkout, createPool, isNoAnswer, targetOf, type Checkout } from "./connect.js";
import { guarded, pgFailure, type GuardContext } from "./errors.js";
import { EVENT_SELECT, toEvent } from "./tasks.js";

/** Rows a page of tasks or events holds (as on SQLite: store/sqlite/board-port.ts). */
export const PAGE_ROWS = 2048;

export function openPostgresBoardPort(url: string): BoardPort {
  const target = targetOf(url);
  let pool: pg.Pool | null = null;
  // Two connections: a handler may look a task up while it reads a board. Idle connections
  // close after a while and never keep the worker's process alive.
  const conn = (): pg.Pool => (pool ??= createPool(url, { durability: "process", max: 2, allowExitOnIdle: true, readOnly: true }));
  let reading = false;
  const ctx: GuardContext = { target, closed: () => false };

  const port: BoardPort = {
    async task(id) {
      const r = await conn().query<BoardTask>(
        `SELECT t.id, t.title, t.description, b.name AS board, t.status, t.assignee, t.due_date AS "dueDate"
         FROM tasks t JOIN boards b ON b.id = t.board_id WHERE t.id = $1`,
        [id],
      );
      return r.rows[0] ?? null;
    },

    async readBoard(name, read) {
      if (reading) throw new StoreError("busy", "a board read is already under way on this port (one at a time)");
      reading = true;
      // Checked out with a listener (connect.ts checkout): the server may end the session, or
      // the network drop it, while the handler holds the snapshot between two pages.
      let out: Checkout | undefined;
      /** A statement of the snapshot that got no answer: its connection has it still in flight. */
      let unanswered: Error | undefined;
      try {
        out = await checkout(conn());
        const c = out.client;
        const lost = out.lost;
        const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> => {
          try {
            return (await c.query<R>(text, values)).rows;
          } catch (err) {
            if (isNoAnswer(err)) unanswered ??= err as Error;
            throw lost() ?? err;
          }
        };
        await query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", []);
        // The first statement fixes the snapshot that every later one in this transaction sees.
        const board = (await query<{ id: number; name: string }>("SELECT id, name FROM boards WHERE name = $1", [name]))[0];
        if (!board) return null;
        const taskCount = (await query<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE board_id = $1", [board.id]))[0]!.n;
        let open = true;
        const live = () => {
          if (!open) throw new StoreError("unavailable", "a board snapshot was used after its read ended");
        };
        const snapshot: BoardSnapshot = {
          board: board.name,
          taskCount,
          tasks: () =>
            paged(
              live,
              target,
              (after) =>
                query<BoardTaskRow>(`SELECT id, title, status, assignee, due_date AS "dueDate" FROM tasks WHERE board_id = $1 AND id > $2 ORDER BY id LIMIT $3`, [board.id, after, PAGE_ROWS]),
              (t) => t,
            ),
          eventsSince: (sinceMs: number) =>
            paged(
              live,
              target,
              (after) =>
                query<BoardEventRow & { id: number }>(
                  `SELECT id, task_id AS "taskId", type, title, created_at AS "createdAt" FROM task_events
                   WHERE board_id = $1 AND created_at >= $2 AND id > $3 ORDER BY id LIMIT $4`,
                  [board.id, new Date(sinceMs), after, PAGE_ROWS],
                ),
              (e) => ({ taskId: e.taskId, type: e.type, title: e.title, createdAt: e.createdAt }),
            ),
        };
        try {
          return await read(snapshot);
        } finally {
          open = false;
        }
      } finally {
        if (out) {
          let broken = out.lost() ?? unanswered;
          // Read only: COMMIT or ROLLBACK alike end it. Not on a connection that is gone or has
          // a statement in flight (it would wait behind it): that one is discarded.
          if (!broken) await out.client.query("COMMIT").catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
          out.release(broken);
        }
        reading = false;
      }
    },

    async eventsAfter(afterId, limit) {
      const r = await conn().query<Parameters<typeof toEvent>[0]>(`${EVENT_SELECT} WHERE e.id > $1 ORDER BY e.id LIMIT $2`, [afterId, limit]);
      return r.rows.map((row): TaskEvent => toEvent(row));
    },

    async meta(key) {
      const r = (await conn().query<{ value: Json }>("SELECT value FROM meta WHERE key = $1", [key])).rows[0];
      return r ? r.value : null;
    },
  };
  return guarded(port, ctx);
}

/** Rows read page by page (keyset on id) as an async iterable; each page is one query in the snapshot's transaction. */
function paged<R extends { id: number }, T>(live: () => void, target: ReturnType<typeof targetOf>, page: (afterId: number) => Promise<R[]>, map: (row: R) => T): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      let rows: R[] = [];
      let i = 0;
      let after = 0;
      let last = false;
      const next = async (): Promise<IteratorResult<T>> => {
        if (i === rows.length) {
          if (last) return { done: true, value: undefined };
          live();
          try {
            rows = await page(after);
          } catch (err) {
            throw pgFailure(err, target);
          }
          i = 0;
          last = rows.length < PAGE_ROWS;
          if (rows.length === 0) return { done: true, value: undefined };
          after = rows[rows.length - 1]!.id;
        }
        return { done: false, value: map(rows[i++]!) };
      };
      return {
        next: () => (i < rows.length ? Promise.resolve({ done: false, value: map(rows[i++]!) }) : next()),
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
