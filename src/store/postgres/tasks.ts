import type pg from "pg";
import type { Task, TaskEvent, TaskEventType } from "../../protocol/types.js";
import type { NewTask, NewTaskEvent, TaskEventPolicy, TaskEventStore, TaskStore } from "../types.js";
import { notFound } from "../../lib/errors.js";
import { inTransaction, ts, tsOrNull } from "./connect.js";
import { LOCK_NAMESPACE, TASK_EVENTS_LOCK } from "./migrate.js";
import { fieldsGiven } from "../rows.js";

interface TaskRow {
  id: number;
  title: string;
  description: string;
  board_id: number;
  status: Task["status"];
  assignee: string | null;
  due_date: string | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

const toTask = (r: TaskRow, board: string): Task => ({
  id: r.id,
  title: r.title,
  description: r.description,
  board,
  status: r.status,
  assignee: r.assignee,
  dueDate: r.due_date,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
  completedAt: r.completed_at === null ? null : iso(r.completed_at),
});

const SELECT = `SELECT t.*, b.name AS board FROM tasks t JOIN boards b ON b.id = t.board_id`;

async function resolveBoard(c: pg.ClientBase, name: string): Promise<number> {
  const row = (await c.query<{ id: number }>(`SELECT id FROM boards WHERE name = $1`, [name])).rows[0];
  if (!row) throw notFound(`board "${name}" not found; create it with \`teamwork boards add ${name}\``);
  return row.id;
}

/**
 * Appends a task write's events, as the last statements of its transaction.
 *
 * The gap-free cursor: readers follow events by `id > cursor` (taskEvents.list, the board
 * port, the digest, SSE). Identity values are handed out when a row is inserted, but
 * transactions commit in any order, so without care a reader could see id 12 (committed)
 * while id 11 is still uncommitted, move its cursor to 12, and never see 11. Every transaction
 * that inserts events therefore first takes one transaction-level advisory lock and holds it
 * until it commits (PostgreSQL makes a commit visible before it releases the transaction's
 * locks): ids are allocated and become visible in the same order, so any snapshot that sees an
 * event sees every event with a lower id. The lock is taken after the task row is written, so
 * it is held only for the event insert and the commit (one round trip each); writes of tasks
 * are serialized only there. The alternative that keeps writers apart, an (xid8, id) cursor
 * read below the oldest running transaction (SCALE-OUT.md §9.4), needs a two-part cursor,
 * which the Store interface (afterId: number) and the clients' cursors do not have.
 */
async function appendEvents(c: pg.ClientBase, taskId: number, boardId: number, title: string, events: NewTaskEvent[], now: number): Promise<void> {
  if (events.length === 0) return;
  await c.query("SELECT pg_advisory_xact_lock($1, $2)", [LOCK_NAMESPACE, TASK_EVENTS_LOCK]);
  const values: string[] = [];
  const params: unknown[] = [taskId, boardId, title, ts(now)];
  for (const e of events) {
    params.push(e.type, JSON.stringify(e.data));
    values.push(`($1, $2, $${params.length - 1}, $3, $${params.length}::json, $4)`);
  }
  await c.query(`INSERT INTO task_events (task_id, board_id, type, title, data, created_at) VALUES ${values.join(", ")}`, params);
}

/** The task store; `events` is the board's policy for the events each write implies, applied inside the write's transaction. */
export function pgTasks(pool: pg.Pool, events: TaskEventPolicy): TaskStore {
  return {
    async list(filter) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.board !== undefined) where.push(`b.name = $${params.push(filter.board)}`);
      if (filter.status !== undefined) where.push(`t.status = $${params.push(filter.status)}`);
      if (filter.assignee !== undefined) where.push(`t.assignee = $${params.push(filter.assignee)}`);
      if (filter.afterId !== undefined) where.push(`t.id > $${params.push(filter.afterId)}`);
      const limit = `$${params.push(filter.limit ?? null)}`;
      const sql = `${SELECT} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY t.id LIMIT ${limit}`;
      return (await pool.query<TaskRow & { board: string }>(sql, params)).rows.map((r) => toTask(r, r.board));
    },

    async get(id) {
      const r = (await pool.query<TaskRow & { board: string }>(`${SELECT} WHERE t.id = $1`, [id])).rows[0];
      return r ? toTask(r, r.board) : null;
    },

    async create(task: NewTask, now) {
      return inTransaction(pool, async (c) => {
        const bid = await resolveBoard(c, task.board);
        const completedAt = task.status === "done" ? ts(now) : null;
        const row = (
          await c.query<TaskRow>(
            `INSERT INTO tasks (board_id, title, description, status, assignee, due_date, created_at, updated_at, completed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING *`,
            [bid, task.title, task.description, task.status, task.assignee, task.dueDate, ts(now), completedAt],
          )
        ).rows[0]!;
        const created = toTask(row, task.board);
        await appendEvents(c, row.id, bid, task.title, events.created(created), now);
        return created;
      });
    },

    async update(id, patch, now) {
      return inTransaction(pool, async (c) => {
        // Locked until commit: two writers of one task take turns, each applying the policy
        // to the task as the other left it.
        const row = (await c.query<TaskRow & { board: string }>(`${SELECT} WHERE t.id = $1 FOR UPDATE OF t`, [id])).rows[0];
        if (!row) return null;
        const before = toTask(row, row.board);
        const next = { ...before, ...fieldsGiven(patch) };
        const bid = next.board === before.board ? row.board_id : await resolveBoard(c, next.board);
        const completedAt = next.status === "done" ? (row.completed_at ?? now) : null;
        const probe: Task = { ...next, completedAt: completedAt === null ? null : iso(completedAt) };
        const implied = events.updated(before, probe);
        if (implied.length === 0) return before;
        const updated = (
          await c.query<TaskRow>(
            `UPDATE tasks SET board_id = $2, title = $3, description = $4, status = $5, assignee = $6, due_date = $7,
               updated_at = $8, completed_at = $9 WHERE id = $1 RETURNING *`,
            [id, bid, next.title, next.description, next.status, next.assignee, next.dueDate, ts(now), tsOrNull(completedAt)],
          )
        ).rows[0]!;
        await appendEvents(c, id, bid, next.title, implied, now);
        return toTask(updated, next.board);
      });
    },

    async remove(id, now) {
      return inTransaction(pool, async (c) => {
        const row = (await c.query<TaskRow & { board: string }>(`${SELECT} WHERE t.id = $1 FOR UPDATE OF t`, [id])).rows[0];
        if (!row) return null;
        const task = toTask(row, row.board);
        await c.query(`DELETE FROM tasks WHERE id = $1`, [id]);
        await appendEvents(c, id, row.board_id, row.title, events.deleted(task), now);
        return task;
      });
    },

    async count() {
      return (await pool.query<{ n: number }>(`SELECT count(*) AS n FROM tasks`)).rows[0]!.n;
    },
  };
}

interface EventRow {
  id: number;
  task_id: number;
  board: string;
  type: TaskEventType;
  title: string;
  data: TaskEvent["data"];
  created_at: number;
}

export const toEvent = (r: EventRow): TaskEvent => ({
  id: r.id,
  taskId: r.task_id,
  board: r.board,
  type: r.type,
  title: r.title,
  data: r.data,
  createdAt: iso(r.created_at),
});

export const EVENT_SELECT = `SELECT e.id, e.task_id, b.name AS board, e.type, e.title, e.data, e.created_at FROM task_events e JOIN boards b ON b.id = e.board_id`;

export function pgTaskEvents(pool: pg.Pool): TaskEventStore {
  return {
    async list(filter) {
      const params: unknown[] = [filter.afterId ?? 0];
      const where = ["e.id > $1"];
      if (filter.taskId !== undefined) where.push(`e.task_id = $${params.push(filter.taskId)}`);
      if (filter.board !== undefined) where.push(`b.name = $${params.push(filter.board)}`);
      const limit = `$${params.push(filter.limit ?? 1000)}`;
      const sql = `${EVENT_SELECT} WHERE ${where.join(" AND ")} ORDER BY e.id LIMIT ${limit}`;
      return (await pool.query<EventRow>(sql, params)).rows.map(toEvent);
    },
  };
}
