// Which task events a write implies: the board's policy, written once for every store. A
// store applies it inside the transaction that makes the write (it reads the task as it is
// there), so the events and the change are stored together or not at all.
//
// - created: always, with the status; plus "assigned" when the new task has an assignee.
// - an update: "completed" when the status becomes done, "assigned" when the assignee becomes
//   someone, "updated" (with from/to per field) for any other field that changed, including
//   an assignee removed; one change can imply several. No change, no event.
// - deleted: always, with the status the task had.

import type { Task } from "../protocol/types.js";
import type { NewTaskEvent, TaskEventPolicy } from "../store/types.js";

const FIELDS = ["title", "description", "board", "status", "assignee", "dueDate"] as const;

export function createdEvents(task: Pick<Task, "status" | "assignee">): NewTaskEvent[] {
  const events: NewTaskEvent[] = [{ type: "created", data: { status: task.status } }];
  if (task.assignee) events.push({ type: "assigned", data: { assignee: task.assignee, previous: null } });
  return events;
}

export function updatedEvents(before: Task, after: Task): NewTaskEvent[] {
  const events: NewTaskEvent[] = [];
  const changed: { [field: string]: { from: string | null; to: string | null } } = {};
  for (const f of FIELDS) {
    if (f === "assignee" || (f === "status" && after.status === "done")) continue;
    if (before[f] !== after[f]) changed[f] = { from: before[f], to: after[f] };
  }
  if (Object.keys(changed).length > 0) events.push({ type: "updated", data: { changes: changed } });
  if (before.status !== "done" && after.status === "done") events.push({ type: "completed", data: {} });
  if (before.assignee !== after.assignee) {
    if (after.assignee !== null) events.push({ type: "assigned", data: { assignee: after.assignee, previous: before.assignee } });
    else events.push({ type: "updated", data: { changes: { assignee: { from: before.assignee, to: null } } } });
  }
  return events;
}

export function deletedEvents(task: Pick<Task, "status">): NewTaskEvent[] {
  return [{ type: "deleted", data: { status: task.status } }];
}

export const taskEventPolicy: TaskEventPolicy = { created: createdEvents, updated: updatedEvents, deleted: deletedEvents };
