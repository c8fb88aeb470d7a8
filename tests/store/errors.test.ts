// Conformance: a store's errors are neutral StoreErrors (src/store/errors.ts), whatever the
// database said, for real causes: another process holding the lock, damaged data, a schema
// from a newer teamwork, a closed store. A failed write changes nothing.

import { expect, it } from "vitest";
import { BREAKERS } from "./breakers.js";
import { forEachStore, newTask, storeError, T0 } from "./suite.js";
import { StoreError } from "../../src/store/errors.js";

// Damaging a PostgreSQL database copies it file by file after a server-wide CHECKPOINT
// (tests/store/breakers.ts): 12-15 s on a loaded machine, more beside a full test run.
const BREAKER_TIMEOUT_MS = 120_000;

forEachStore("errors", (fx, factory) => {
  it("another process holds the write lock: writes are refused busy, nothing is changed, reads are still answered", async () => {
    const { store, location } = fx();
    const t = await store.tasks.create(newTask({ title: "before" }), T0);
    const holder = await BREAKERS[location.kind].holdWriteLock(location);
    try {
      const busy = await storeError(store.tasks.create(newTask({ title: "during" }), T0 + 1), "busy");
      expect(busy.reason).not.toBe("");
      await storeError(store.tasks.update(t.id, { title: "during" }, T0 + 1), "busy");
      await storeError(store.boards.create("web", T0 + 1), "busy");
      await storeError(store.meta.set("k", 1), "busy");
      await storeError(store.schedules.upsert({ name: "s", cron: "* * * * * *", timezone: null, jobType: "noop", payload: {} }, T0), "busy");
      expect(await store.tasks.list({})).toEqual([t]);
      expect((await store.taskEvents.list({})).map((e) => e.type)).toEqual(["created"]);
    } finally {
      await holder.release();
    }
    // The lock is gone: the same writes go through.
    await store.tasks.update(t.id, { title: "after" }, T0 + 2);
    expect((await store.tasks.get(t.id))!.title).toBe("after");
    expect(await store.boards.get("web")).toBeNull();
  });

  it("a lock holder that dies without letting go: the store writes again", async () => {
    const { store, location } = fx();
    const holder = await BREAKERS[location.kind].holdWriteLock(location);
    await storeError(store.meta.set("k", 1), "busy");
    await holder.kill();
    await store.meta.set("k", 2);
    expect(await store.meta.get("k")).toBe(2);
  });

  it("opening a store while another process holds the lock: it opens, or refuses busy; never another kind", async () => {
    const { location, openAnother } = fx();
    const holder = await BREAKERS[location.kind].holdWriteLock(location);
    try {
      const opened = await openAnother().then(
        (s) => s,
        (e: unknown) => e,
      );
      if (opened instanceof Error) expect(opened).toMatchObject({ name: "StoreError", kind: "busy" });
      else expect(await (opened as Awaited<ReturnType<typeof openAnother>>).tasks.count()).toBe(0);
    } finally {
      await holder.release();
    }
  });

  it("damaged rows: corrupt when a method reads them, not another kind", async () => {
    const { store, location, openAnother } = fx();
    for (let i = 0; i < 200; i++) await store.tasks.create(newTask({ title: `task ${i} ${"x".repeat(300)}`, description: "d".repeat(1000) }), T0);
    await store.close();
    BREAKERS[location.kind].damageTable(location, "tasks");
    const reopened = await openAnother();
    const err = await storeError(reopened.tasks.list({}), "corrupt");
    expect(err.reason).not.toBe("");
    // What does not read the damaged rows is still answered (a board's task count does read
    // them on PostgreSQL, where it may come from the table rather than an index).
    expect(await reopened.taskEvents.list({ limit: 1000 })).toHaveLength(200);
    expect(await reopened.schedules.list()).toEqual([]);
  }, BREAKER_TIMEOUT_MS);

  it("a store that is garbage: refused corrupt at open", async () => {
    const { store, location, openAnother } = fx();
    await store.close();
    BREAKERS[location.kind].replaceWithGarbage(location);
    await storeError(openAnother(), "corrupt");
  }, BREAKER_TIMEOUT_MS);

  it("a schema from a newer teamwork: refused too_new at open, with both versions in the reason", async () => {
    const { store, location, openAnother } = fx();
    await store.tasks.create(newTask(), T0);
    await store.close();
    BREAKERS[location.kind].markNewer(location);
    const err = await storeError(openAnother(), "too_new");
    expect(err.reason).toMatch(/999/);
  });

  it(`a closed store: every method refuses unavailable (${factory.name})`, async () => {
    const { store } = fx();
    await store.close();
    await storeError(store.tasks.list({}), "unavailable");
    await storeError(store.tasks.create(newTask(), T0), "unavailable");
    await storeError(store.boards.list(), "unavailable");
    await storeError(store.taskEvents.list({}), "unavailable");
    await storeError(store.meta.get("k"), "unavailable");
    await storeError(store.schedules.list(), "unavailable");
    await storeError(store.attachments.get(1), "unavailable");
    await store.close(); // closing twice is fine
  });

  it("errors that are the caller's (unknown board, taken name) are not StoreErrors", async () => {
    const { store } = fx();
    await store.boards.create("web", T0);
    for (const p of [store.boards.create("web", T0), store.tasks.create(newTask({ board: "nope" }), T0)]) {
      const err = await p.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).not.toBeInstanceOf(StoreError);
      expect(err).toHaveProperty("code");
    }
  });
});
