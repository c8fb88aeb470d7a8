import type { AppContext, Handlers } from "../context.js";
import { ok } from "../context.js";

type TaskRoutes = "boardsList" | "boardsAdd" | "tasksList" | "tasksAdd" | "tasksGet" | "tasksEdit" | "tasksDone" | "tasksAssign" | "tasksRemove" | "taskEventsList";

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
      return ok({ tasks: await board.listTasks(filter) });
    },
    async tasksAdd(input) {
      return { status: 201, body: { task: await board.addTask(input) } };
    },
    async tasksGet({ id }) {
      return ok({ task: await board.getTask(id) });
    },
    async tasksEdit({ id, ...patch }) {
      return ok({ task: await board.editTask(id, patch) });
    },
    async tasksDone({ id }) {
      return ok({ task: await board.setStatus(id, "done") });
    },
    async tasksAssign({ id, assignee }) {
      return ok({ task: await board.assign(id, assignee), job: null });
    },
    async tasksRemove({ id }) {
      return ok({ task: await board.removeTask(id) });
    },
    async taskEventsList(filter) {
      return ok({ events: await board.events(filter) });
    },
  };
}
