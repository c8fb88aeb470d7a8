import type { AppContext, Handlers } from "../context.js";
import { ok } from "../context.js";
import { listInSlices } from "./slices.js";

type TaskRoutes = "uploadsAdd" | "uploadsGet" | "boardsList" | "boardsAdd" | "tasksList" | "tasksAdd" | "tasksGet" | "tasksEdit" | "tasksDone" | "tasksAssign" | "tasksRemove" | "taskEventsList";

export function taskRoutes(app: AppContext): Pick<Handlers, TaskRoutes> {
  const { board } = app;
  return {
    async boardsList() {
      return ok({ boards: await board.listBoards() });
    },
    async boardsAdd({ name }) {
      return { status: 201, body: { board: await board.addBoard(name) } };
    },
    async tasksList(filter) {
      // Oldest first, every task unless limited: each slice starts after the last id of the one before.
      return listInSlices("tasks", filter.limit ?? Infinity, undefined, (limit, afterId) => board.listTasks({ ...filter, limit, afterId }), (t) => t.id);
    },
    async tasksAdd(input) {
      return { status: 201, body: { task: await board.addTask(input) } };
    },
    async tasksGet({ id }) {
      return ok({ task: await board.getTask(id), attachments: await app.uploads.forTask(id) });
    },
    async tasksEdit({ id, ...patch }) {
      return ok({ task: await board.editTask(id, patch) });
    },
    async tasksDone({ id }) {
      return ok({ task: await board.setStatus(id, "done") });
    },
    async tasksAssign({ id, assignee }) {
      // The assignee hears about it by mail, in the background (202: the email is on its way).
      // The email is validated before the task changes, so a refused address changes nothing.
      const email = { type: "assignment-email", payload: { taskId: id, assignee } };
      const mails = app.engine.registry.has(email.type);
      if (mails) await app.engine.prepare(email);
      const task = await board.assign(id, assignee);
      if (!mails) return ok({ task, job: null });
      const { job } = await app.engine.enqueue(email);
      return { status: 202, body: { task, job } };
    },
    async uploadsAdd(input) {
      return { status: 202, body: await app.uploads.add(input) };
    },
    async uploadsGet({ id }) {
      return ok({ upload: await app.uploads.get(id) });
    },
    async tasksRemove({ id }) {
      return ok({ task: await board.removeTask(id) });
    },
    async taskEventsList(filter) {
      return listInSlices("events", filter.limit ?? 1000, filter.afterId, (limit, afterId) => board.events({ ...filter, limit, afterId }), (e) => e.id);
    },
  };
}
