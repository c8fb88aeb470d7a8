import { describe, expect, it } from "vitest";
import { createdEvents, deletedEvents, updatedEvents } from "../../src/board/task-events.js";
import type { Task } from "../../src/protocol/types.js";

const task = (over: Partial<Task> = {}): Task => ({
  id: 1,
  title: "Write spec",
  description: "",
  board: "default",
  status: "todo",
  assignee: null,
  dueDate: null,
  createdAt: "2026-12-01T00:00:00.000Z",
  updatedAt: "2026-12-01T00:00:00.000Z",
  completedAt: null,
  ...over,
});

describe("createdEvents", () => {
  it("is one created event with the status, and an assigned event when someone is assigned", () => {
    expect(createdEvents(task())).toEqual([{ type: "created", data: { status: "todo" } }]);
    expect(createdEvents(task({ status: "doing", assignee: "ana@example.com" }))).toEqual([
      { type: "created", data: { status: "doing" } },
      { type: "assigned", data: { assignee: "ana@example.com", previous: null } },
    ]);
  });
});

describe("updatedEvents", () => {
  it("is nothing when nothing changed (times alone are no change)", () => {
    expect(updatedEvents(task(), task({ updatedAt: "2027-01-01T00:00:00.000Z" }))).toEqual([]);
  });

  it("puts every plain field that changed in one updated event, from and to", () => {
    expect(updatedEvents(task(), task({ title: "Spec", board: "web", dueDate: "2026-12-24", status: "doing" }))).toEqual([
      { type: "updated", data: { changes: { title: { from: "Write spec", to: "Spec" }, board: { from: "default", to: "web" }, status: { from: "todo", to: "doing" }, dueDate: { from: null, to: "2026-12-24" } } } },
    ]);
  });

  it("says completed when the status becomes done, not updated", () => {
    expect(updatedEvents(task({ status: "doing" }), task({ status: "done" }))).toEqual([{ type: "completed", data: {} }]);
    // Already done: no second completed.
    expect(updatedEvents(task({ status: "done" }), task({ status: "done", title: "x" }))).toEqual([{ type: "updated", data: { changes: { title: { from: "Write spec", to: "x" } } } }]);
    // Reopened: an update of the status.
    expect(updatedEvents(task({ status: "done" }), task({ status: "todo" }))).toEqual([{ type: "updated", data: { changes: { status: { from: "done", to: "todo" } } } }]);
  });

  it("says assigned when the assignee becomes someone (with who it was), updated when it is removed", () => {
    expect(updatedEvents(task({ assignee: "a@x.org" }), task({ assignee: "b@x.org" }))).toEqual([{ type: "assigned", data: { assignee: "b@x.org", previous: "a@x.org" } }]);
    expect(updatedEvents(task({ assignee: "a@x.org" }), task({ assignee: null }))).toEqual([{ type: "updated", data: { changes: { assignee: { from: "a@x.org", to: null } } } }]);
  });

  it("gives several events for one change that implies several, in a fixed order", () => {
    expect(updatedEvents(task(), task({ title: "t", status: "done", assignee: "c@x.org" })).map((e) => e.type)).toEqual(["updated", "completed", "assigned"]);
  });
});

describe("deletedEvents", () => {
  it("is one deleted event with the status the task had", () => {
    expect(deletedEvents(task({ status: "doing" }))).toEqual([{ type: "deleted", data: { status: "doing" } }]);
  });
});
