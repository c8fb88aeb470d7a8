// Conformance: boards. A fresh store has the "default" board; names are unique, whoever
// creates them; each board counts its tasks.

import { expect, it } from "vitest";
import { forEachStore, iso, newTask, T0, teamworkError } from "./suite.js";

forEachStore("boards", (fx) => {
  it("a fresh store has only the default board, with no tasks", async () => {
    const boards = await fx().store.boards.list();
    expect(boards.map((b) => [b.name, b.taskCount])).toEqual([["default", 0]]);
  });

  it("creates a board, gets it by name, lists boards by name", async () => {
    const { store } = fx();
    const web = await store.boards.create("web", T0);
    expect(web).toMatchObject({ name: "web", createdAt: iso(T0), taskCount: 0 });
    await store.boards.create("api", T0 + 1);
    expect(await store.boards.get("web")).toEqual(web);
    expect((await store.boards.list()).map((b) => b.name)).toEqual(["api", "default", "web"]);
    expect(new Set((await store.boards.list()).map((b) => b.id)).size).toBe(3);
  });

  it("an unknown name: get gives null", async () => {
    expect(await fx().store.boards.get("nope")).toBeNull();
  });

  it("a taken name: conflict, and the board is unchanged", async () => {
    const { store } = fx();
    const web = await store.boards.create("web", T0);
    const err = await teamworkError(store.boards.create("web", T0 + 5), "conflict");
    expect(err.message).toMatch(/board "web" already exists/);
    expect(await store.boards.get("web")).toEqual(web);
  });

  it("names are compared exactly (case and spaces count)", async () => {
    const { store } = fx();
    await store.boards.create("Web", T0);
    await store.boards.create("web ", T0);
    expect(await store.boards.get("web")).toBeNull();
    expect((await store.boards.list()).map((b) => b.name).sort()).toEqual(["Web", "default", "web "].sort());
  });

  it("taskCount follows creates, moves and deletes", async () => {
    const { store } = fx();
    await store.boards.create("web", T0);
    const a = await store.tasks.create(newTask({ board: "web" }), T0);
    await store.tasks.create(newTask({ board: "web" }), T0);
    await store.tasks.create(newTask(), T0);
    const count = async (name: string) => (await store.boards.get(name))!.taskCount;
    expect([await count("web"), await count("default")]).toEqual([2, 1]);
    await store.tasks.update(a.id, { board: "default" }, T0 + 1);
    expect([await count("web"), await count("default")]).toEqual([1, 2]);
    await store.tasks.remove(a.id, T0 + 2);
    expect([await count("web"), await count("default")]).toEqual([1, 1]);
    expect((await store.boards.list()).find((b) => b.name === "web")!.taskCount).toBe(1);
  });

  it("two handles creating the same board at once: exactly one wins, the other gets conflict", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    for (let i = 0; i < 20; i++) {
      const name = `race-${i}`;
      const results = await Promise.allSettled([store.boards.create(name, T0), other.boards.create(name, T0)]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(lost.reason).toMatchObject({ code: "conflict" });
    }
    expect((await other.boards.list()).length).toBe(21);
    expect(await store.boards.list()).toEqual(await other.boards.list());
  });
});
