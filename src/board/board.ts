// The task board: the rules above the store. Input arrives validated in shape (protocol);
// here we apply meaning: defaults, "nothing to change", not-found messages.

import type { Clock } from "../lib/clock.js";
import { invalid, notFound } from "../lib/errors.js";
import type { Board, Task, TaskEvent, TaskStatus } from "../protocol/types.js";
import type { NewTask, Store, TaskEventFilter, TaskFilter, TaskPatch } from "../store/types.js";

export class TaskBoard {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  listBoards(): Promise<Board[]> {
    return this.store.boards.list();
  }

  addBoard(name: string): Promise<Board> {
    return this.store.boards.create(name, this.clock.now());
  }

  async listTasks(filter: TaskFilter): Promise<Task[]> {
    if (filter.board !== undefined) await this.requireBoard(filter.board);
    return this.store.tasks.list(filter);
  }

  addTask(input: Partial<NewTask> & { title: string }): Promise<Task> {
    const task: NewTask = {
      title: input.title,
      board: input.board ?? "default",
      description: input.description ?? "",
      assignee: input.assignee ?? null,
      dueDate: input.dueDate ?? null,
      status: input.status ?? "todo",
    };
    return this.store.tasks.create(task, this.clock.now());
  }

  async getTask(id: number): Promise<Task> {
    return (await this.store.tasks.get(id)) ?? this.missing(id);
  }

  async editTask(id: number, patch: TaskPatch): Promise<Task> {
    if (Object.keys(patch).length === 0) {
      throw invalid("nothing to change", "pass at least one of --title, --board, --description, --assignee, --due, --status");
    }
    return (await this.store.tasks.update(id, patch, this.clock.now())) ?? this.missing(id);
  }

  setStatus(id: number, status: TaskStatus): Promise<Task> {
    return this.editTask(id, { status });
  }

  assign(id: number, assignee: string): Promise<Task> {
    return this.editTask(id, { assignee });
  }

  async removeTask(id: number): Promise<Task> {
    return (await this.store.tasks.remove(id, this.clock.now())) ?? this.missing(id);
  }

  countTasks(): Promise<number> {
    return this.store.tasks.count();
  }

  async events(filter: TaskEventFilter): Promise<TaskEvent[]> {
    if (filter.board !== undefined) await this.requireBoard(filter.board);
    return this.store.taskEvents.list(filter);
  }

  private async requireBoard(name: string): Promise<void> {
    if (!(await this.store.boards.get(name))) throw notFound(`board "${name}" not found`);
  }

  private missing(id: number): never {
    throw notFound(`task ${id} not found`);
  }
}
