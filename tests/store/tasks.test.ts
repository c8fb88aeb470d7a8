// Conformance: tasks. Create, get, list (filters, order, limit), patch, delete, count; the
// write and what it implies (completedAt, updatedAt) stay together; a patch names only what
// changes; two handles never lose each other's writes.

import { expect, it } from "vitest";
import { forEachStore, iso, newTask, T0, teamworkError } from "./suite.js";
import type { TaskPatch } from "../../src/store/types.js";

forEachStore("tasks", (fx) => {
  it("creates a task with every field, and gets it back by id", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask({ title: "ship", description: "by Friday", assignee: "ann", dueDate: "2026-05-08", status: "doing" }), T0);
    expect(t).toEqual({
      id: expect.any(Number),
      title: "ship",
      description: "by Friday",
      board: "default",
      status: "doing",
      assignee: "ann",
      dueDate: "2026-05-08",
      createdAt: iso(T0),
      updatedAt: iso(T0),
      completedAt: null,
    });
    expect(await store.tasks.get(t.id)).toEqual(t);
  });

  it("a task created done is completed at its creation", async () => {
    const t = await fx().store.tasks.create(newTask({ status: "done" }), T0);
    expect(t.completedAt).toBe(iso(T0));
  });

  it("keeps text as given: quotes, newlines, emoji, long text", async () => {
    const { store } = fx();
    const title = `it's "quoted"; DROP TABLE tasks; --\n🚀 ${"é".repeat(5000)}`;
    const t = await store.tasks.create(newTask({ title, description: "nul-free and \t tab" }), T0);
    expect((await store.tasks.get(t.id))!.title).toBe(title);
    expect((await store.tasks.get(t.id))!.description).toBe("nul-free and \t tab");
  });

  it("a NUL character (U+0000): kept as given, or refused invalid_input where the database's text cannot hold it (PostgreSQL)", async () => {
    const { store } = fx();
    const written = await store.tasks.create(newTask({ description: "\u0000 nul" }), T0).then(
      (t) => t,
      (e: unknown) => e,
    );
    if (written instanceof Error) {
      expect(written).toMatchObject({ code: "invalid_input" });
      expect(await store.tasks.count()).toBe(0);
    } else expect((await store.tasks.get((written as { id: number }).id))!.description).toBe("\u0000 nul");
  });

  it("an unknown board: not_found naming the board, and nothing is stored", async () => {
    const { store } = fx();
    const err = await teamworkError(store.tasks.create(newTask({ board: "nope" }), T0), "not_found");
    expect(err.message).toMatch(/board "nope" not found/);
    expect(await store.tasks.count()).toBe(0);
    expect(await store.taskEvents.list({})).toEqual([]);
  });

  it("get, update and remove of an unknown id: null", async () => {
    const { store } = fx();
    expect(await store.tasks.get(12345)).toBeNull();
    expect(await store.tasks.update(12345, { title: "x" }, T0)).toBeNull();
    expect(await store.tasks.remove(12345, T0)).toBeNull();
    expect(await store.taskEvents.list({})).toEqual([]);
  });

  it("lists in id order, filtered by board, status and assignee (together too)", async () => {
    const { store } = fx();
    await store.boards.create("web", T0);
    const mk = (board: string, status: "todo" | "doing" | "done", assignee: string | null) => store.tasks.create(newTask({ board, status, assignee }), T0);
    const a = await mk("web", "todo", "ann");
    const b = await mk("default", "todo", "bob");
    const c = await mk("web", "done", "ann");
    const d = await mk("web", "doing", null);
    const ids = async (f: Parameters<typeof store.tasks.list>[0]) => (await store.tasks.list(f)).map((t) => t.id);
    expect(await ids({})).toEqual([a.id, b.id, c.id, d.id]);
    expect(await ids({ board: "web" })).toEqual([a.id, c.id, d.id]);
    expect(await ids({ status: "todo" })).toEqual([a.id, b.id]);
    expect(await ids({ assignee: "ann" })).toEqual([a.id, c.id]);
    expect(await ids({ board: "web", assignee: "ann", status: "done" })).toEqual([c.id]);
    expect(await ids({ board: "nope" })).toEqual([]);
    expect(await ids({ assignee: "nobody" })).toEqual([]);
    expect((await store.tasks.list({ board: "web" }))[0]).toEqual(await store.tasks.get(a.id));
  });

  it("a limit gives the first tasks in id order, after the filters", async () => {
    const { store } = fx();
    const made = [];
    for (let i = 0; i < 10; i++) made.push(await store.tasks.create(newTask({ status: i % 2 ? "done" : "todo" }), T0 + i));
    expect((await store.tasks.list({ limit: 3 })).map((t) => t.id)).toEqual(made.slice(0, 3).map((t) => t.id));
    expect((await store.tasks.list({ status: "done", limit: 2 })).map((t) => t.id)).toEqual([made[1]!.id, made[3]!.id]);
    expect(await store.tasks.list({ limit: 0 })).toEqual([]);
    expect(await store.tasks.list({ limit: 100 })).toHaveLength(10);
    // A slice starts after the last id of the one before (daemon/routes/slices.ts).
    expect((await store.tasks.list({ afterId: made[2]!.id, limit: 3 })).map((t) => t.id)).toEqual(made.slice(3, 6).map((t) => t.id));
    expect((await store.tasks.list({ status: "done", afterId: made[1]!.id })).map((t) => t.id)).toEqual([made[3]!.id, made[5]!.id, made[7]!.id, made[9]!.id]);
  });

  it("count counts every task on every board", async () => {
    const { store } = fx();
    await store.boards.create("web", T0);
    expect(await store.tasks.count()).toBe(0);
    const a = await store.tasks.create(newTask(), T0);
    await store.tasks.create(newTask({ board: "web" }), T0);
    expect(await store.tasks.count()).toBe(2);
    await store.tasks.remove(a.id, T0);
    expect(await store.tasks.count()).toBe(1);
  });

  it("a patch changes only the fields it names, and moves updatedAt", async () => {
    const { store } = fx();
    await store.boards.create("web", T0);
    const t = await store.tasks.create(newTask({ description: "keep me", assignee: "ann", dueDate: "2026-06-01" }), T0);
    const u = await store.tasks.update(t.id, { title: "renamed", board: "web" }, T0 + 10);
    expect(u).toEqual({ ...t, title: "renamed", board: "web", updatedAt: iso(T0 + 10) });
    expect(await store.tasks.get(t.id)).toEqual(u);
  });

  it("a patch can clear the nullable fields with null", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask({ assignee: "ann", dueDate: "2026-06-01" }), T0);
    const u = await store.tasks.update(t.id, { assignee: null, dueDate: null }, T0 + 1);
    expect(u).toMatchObject({ assignee: null, dueDate: null, title: t.title });
  });

  it("a field given as undefined is a field left out: nothing is cleared or refused", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask({ title: "keep", description: "d", assignee: "ann", dueDate: "2026-06-01", status: "doing" }), T0);
    const undefinedEverywhere: TaskPatch = { title: undefined, board: undefined, description: undefined, assignee: undefined, dueDate: undefined, status: undefined };
    expect(await store.tasks.update(t.id, undefinedEverywhere, T0 + 1)).toEqual(t);
    expect(await store.tasks.update(t.id, { title: undefined }, T0 + 2)).toEqual(t);
    expect(await store.tasks.update(t.id, { assignee: undefined }, T0 + 3)).toEqual(t);
    const u = await store.tasks.update(t.id, { title: "new", assignee: undefined, status: undefined }, T0 + 4);
    expect(u).toEqual({ ...t, title: "new", updatedAt: iso(T0 + 4) });
    // Only the real change left an event.
    const events = await store.taskEvents.list({ taskId: t.id });
    expect(events.map((e) => e.type)).toEqual(["created", "assigned", "updated"]);
    expect(events[2]!.data).toEqual({ changes: { title: { from: "keep", to: "new" } } });
  });

  it("a patch that changes nothing: the task as it was, updatedAt kept", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask({ assignee: "ann" }), T0);
    expect(await store.tasks.update(t.id, {}, T0 + 1)).toEqual(t);
    expect(await store.tasks.update(t.id, { title: t.title, assignee: "ann", status: "todo" }, T0 + 2)).toEqual(t);
    expect(await store.tasks.get(t.id)).toEqual(t);
  });

  it("completedAt: set when the task becomes done, kept while it stays done, cleared when it leaves", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask(), T0);
    expect((await store.tasks.update(t.id, { status: "done" }, T0 + 10))!.completedAt).toBe(iso(T0 + 10));
    expect((await store.tasks.update(t.id, { title: "still done" }, T0 + 20))!.completedAt).toBe(iso(T0 + 10));
    expect((await store.tasks.update(t.id, { status: "doing" }, T0 + 30))!.completedAt).toBeNull();
    expect((await store.tasks.update(t.id, { status: "done" }, T0 + 40))!.completedAt).toBe(iso(T0 + 40));
  });

  it("a move to an unknown board: not_found, and the task is unchanged", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask(), T0);
    await teamworkError(store.tasks.update(t.id, { board: "nope", title: "moved" }, T0 + 1), "not_found");
    expect(await store.tasks.get(t.id)).toEqual(t);
    expect((await store.taskEvents.list({ taskId: t.id })).map((e) => e.type)).toEqual(["created"]);
  });

  it("remove returns the task as it was; it is gone, and its id is never given again", async () => {
    const { store } = fx();
    const a = await store.tasks.create(newTask({ title: "a" }), T0);
    const b = await store.tasks.create(newTask({ title: "b" }), T0);
    expect(await store.tasks.remove(b.id, T0 + 1)).toEqual(b);
    expect(await store.tasks.get(b.id)).toBeNull();
    expect(await store.tasks.remove(b.id, T0 + 2)).toBeNull();
    expect((await store.tasks.list({})).map((t) => t.id)).toEqual([a.id]);
    const c = await store.tasks.create(newTask({ title: "c" }), T0 + 3);
    expect(c.id).toBeGreaterThan(b.id);
  });

  it("two handles: tasks created from both get distinct ids and are seen from both", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    const made = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? store : other).tasks.create(newTask({ title: `t${i}` }), T0 + i)));
    expect(new Set(made.map((t) => t.id)).size).toBe(40);
    expect(await store.tasks.list({})).toEqual(await other.tasks.list({}));
    expect(await other.tasks.count()).toBe(40);
  });

  it("two handles patching one task at once, different fields: neither write is lost", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    const t = await store.tasks.create(newTask({ title: "t0" }), T0);
    for (let i = 1; i <= 20; i++) {
      await Promise.all([store.tasks.update(t.id, { title: `t${i}` }, T0 + i), other.tasks.update(t.id, { assignee: `a${i}` }, T0 + i)]);
      expect(await other.tasks.get(t.id)).toMatchObject({ title: `t${i}`, assignee: `a${i}` });
    }
  });

  it("a task deleted from one handle: the other sees it gone, and its patch gives null", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    const t = await store.tasks.create(newTask(), T0);
    expect(await other.tasks.get(t.id)).toEqual(t);
    await store.tasks.remove(t.id, T0 + 1);
    expect(await other.tasks.get(t.id)).toBeNull();
    expect(await other.tasks.update(t.id, { title: "late" }, T0 + 2)).toBeNull();
    expect((await other.taskEvents.list({ taskId: t.id })).map((e) => e.type)).toEqual(["created", "deleted"]);
  });
});
