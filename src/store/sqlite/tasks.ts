import type { Task, TaskEvent, TaskEventType } from "../../protocol/types.js";
import type { NewTask, TaskEventPolicy, TaskEventStore, TaskPatch, TaskStore } from "../types.js";
import { notFound } from "../../lib/errors.js";
import type { Db } from "./open.js";
import { iso, isoOrNull } from "./convert.js";
import { fieldsGiven } from "../rows.js";

interface TaskRow {
  id: number;
  title: string;
  description: string;
  board: string;
  board_id: number;
  status: Task["status"];
  assignee: string | null;
  due_date: string | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

const toTask = (r: TaskRow): Task => ({
  id: r.id,
  title: r.title,
  description: r.description,
  board: r.board,
  status: r.status,
  assignee: r.assignee,
  dueDate: r.due_date,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
  completedAt: isoOrNull(r.completed_at),
});

/** The task store; `events` is the board's policy for the events each write implies. */
export function sqliteTasks(db: Db, events: TaskEventPolicy): TaskStore {
  const select = `SELECT t.*, b.name AS board FROM tasks t JOIN boards b ON b.id = t.board_id`;
  const getRow = db.prepare<[number], TaskRow>(`${select} WHERE t.id = ?`);
  const boardId = db.prepare<[string], { id: number }>(`SELECT id FROM boards WHERE name = ?`);
  const insertTask = db.prepare(
    `INSERT INTO tasks (board_id, title, description, status, assignee, due_date, created_at, updated_at, completed_at)
     VALUES (@boardId, @title, @description, @status, @assignee, @dueDate, @now, @now, @completedAt)`,
  );
  const updateTask = db.prepare(
    `UPDATE tasks SET board_id = @boardId, title = @title, description = @description, status = @status,
       assignee = @assignee, due_date = @dueDate, updated_at = @now, completed_at = @completedAt WHERE id = @id`,
  );
  const deleteTask = db.prepare<[number]>(`DELETE FROM tasks WHERE id = ?`);
  const insertEvent = db.prepare<[number, number, string, string, string, number]>(
    `INSERT INTO task_events (task_id, board_id, type, title, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const count = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM tasks`);

  const resolveBoard = (name: string): number => {
    const row = boardId.get(name);
    if (!row) throw notFound(`board "${name}" not found; create it with \`teamwork boards add ${name}\``);
    return row.id;
  };

  const create = db.transaction((task: NewTask, now: number): Task => {
    const bid = resolveBoard(task.board);
    const completedAt = task.status === "done" ? now : null;
    const id = Number(insertTask.run({ boardId: bid, ...task, now, completedAt }).lastInsertRowid);
    const created = toTask(getRow.get(id)!);
    for (const e of events.created(created)) insertEvent.run(id, bid, e.type, task.title, JSON.stringify(e.data), now);
    return created;
  });

  const update = db.transaction((id: number, patch: TaskPatch, now: number): Task | null => {
    const row = getRow.get(id);
    if (!row) return null;
    const before = toTask(row);
    const next = { ...before, ...fieldsGiven(patch) };
    const bid = next.board === before.board ? row.board_id : resolveBoard(next.board);
    const completedAt = next.status === "done" ? (row.completed_at ?? now) : null;
    const probe: Task = { ...next, completedAt: isoOrNull(completedAt) };
    const implied = events.updated(before, probe);
    if (implied.length === 0) return before;
    updateTask.run({ id, boardId: bid, title: next.title, description: next.description, status: next.status, assignee: next.assignee, dueDate: next.dueDate, now, completedAt });
    for (const e of implied) insertEvent.run(id, bid, e.type, next.title, JSON.stringify(e.data), now);
    return toTask(getRow.get(id)!);
  });

  const remove = db.transaction((id: number, now: number): Task | null => {
    const row = getRow.get(id);
    if (!row) return null;
    const task = toTask(row);
    deleteTask.run(id);
    for (const e of events.deleted(task)) insertEvent.run(id, row.board_id, e.type, row.title, JSON.stringify(e.data), now);
    return task;
  });

  return {
    async list(filter) {
      const where: string[] = [];
      const params: Record<string, unknown> = {};
      if (filter.board !== undefined) {
        where.push("b.name = @board");
        params.board = filter.board;
      }
      if (filter.status !== undefined) {
        where.push("t.status = @status");
        params.status = filter.status;
      }
      if (filter.assignee !== undefined) {
        where.push("t.assignee = @assignee");
        params.assignee = filter.assignee;
      }
      if (filter.afterId !== undefined) {
        where.push("t.id > @afterId");
        params.afterId = filter.afterId;
      }
      params.limit = filter.limit ?? -1;
      const sql = `${select} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY t.id LIMIT @limit`;
      return db.prepare<[Record<string, unknown>], TaskRow>(sql).all(params).map(toTask);
    },
    async get(id) {
      const row = getRow.get(id);
      return row ? toTask(row) : null;
    },
    async create(task, now) {
      return create.immediate(task, now);
    },
    async update(id, patch, now) {
      return update.immediate(id, patch, now);
    },
    async remove(id, now) {
      return remove.immediate(id, now);
    },
    async count() {
      return count.get()!.n;
    },
  };
}

interface EventRow {
  id: number;
  task_id: number;
  board: string;
  type: TaskEventType;
  title: string;
  data: string;
  created_at: number;
}

export function sqliteTaskEvents(db: Db): TaskEventStore {
  return {
    async list(filter) {
      const where: string[] = ["e.id > @afterId"];
      const params: Record<string, unknown> = { afterId: filter.afterId ?? 0, limit: filter.limit ?? 1000 };
      if (filter.taskId !== undefined) {
        where.push("e.task_id = @taskId");
        params.taskId = filter.taskId;
      }
      if (filter.board !== undefined) {
        where.push("b.name = @board");
        params.board = filter.board;
      }
      const sql = `SELECT e.*, b.name AS board FROM task_events e JOIN boards b ON b.id = e.board_id
        WHERE ${where.join(" AND ")} ORDER BY e.id LIMIT @limit`;
      return db
        .prepare<[Record<string, unknown>], EventRow>(sql)
        .all(params)
        .map(
          (r): TaskEvent => ({
            id: r.id,
            taskId: r.task_id,
            board: r.board,
            type: r.type,
            title: r.title,
            data: JSON.parse(r.data) as TaskEvent["data"],
            createdAt: iso(r.created_at),
          }),
        );
    },
  };
}
