// The board port (ctx.board) on every store: what a job handler may read, read-only, from
// the worker's own connection. Its promises: one task with its board; a board read at one
// moment (a write made during the read is not seen, and the count agrees with the rows),
// streamed in id order across pages; events since a time and after a cursor with no gap;
// the meta the daemon keeps; and clear errors for a snapshot misused.

import { afterEach, describe, expect, it } from "vitest";
import { STORE_FACTORIES, type StoreFixture } from "./factory.js";
import { boardPortAt } from "../../src/store/index.js";
import { PAGE_ROWS } from "../../src/store/sqlite/board-port.js";
import { StoreError } from "../../src/store/errors.js";
import type { BoardSnapshot, BoardTaskRow } from "../../src/store/board-port.js";

const T0 = Date.parse("2026-11-01T09:00:00Z");
const task = (title: string, extra: Partial<{ board: string; status: "todo" | "doing" | "done"; assignee: string | null; dueDate: string | null; description: string }> = {}) => ({
  title,
  board: "web",
  description: "",
  assignee: null,
  dueDate: null,
  status: "todo" as const,
  ...extra,
});

for (const factory of STORE_FACTORIES) {
  describe(`board port on ${factory.name}`, () => {
    let f: StoreFixture | undefined;
    afterEach(async () => {
      await f?.cleanup();
      f = undefined;
    });

    it("reads one task with its board's name, and null for one that is not there", async () => {
      f = await factory.create();
      await f.store.boards.create("web", T0);
      const t = await f.store.tasks.create(task("Ship it", { description: "all of it", assignee: "ana", dueDate: "2026-11-20", status: "doing" }), T0);
      const port = boardPortAt(f.location);
      expect(await port.task(t.id)).toEqual({ id: t.id, title: "Ship it", description: "all of it", board: "web", status: "doing", assignee: "ana", dueDate: "2026-11-20" });
      expect(await port.task(t.id + 1000)).toBeNull();
      // It reads what the daemon wrote since, not a copy taken at open.
      await f.store.tasks.update(t.id, { status: "done" }, T0 + 1);
      expect((await port.task(t.id))!.status).toBe("done");
    });

    it("reads a board at one moment: a write made during the read is not seen, across pages", async () => {
      f = await factory.create();
      await f.store.boards.create("web", T0);
      await f.store.boards.create("other", T0);
      const n = PAGE_ROWS * 2 + 17;
      const ids: number[] = [];
      for (let i = 0; i < n; i++) {
        ids.push((await f.store.tasks.create(task(`t${i}`, { status: i % 2 ? "done" : "todo" }), T0)).id);
        if (i % 100 === 0) await f.store.tasks.create(task(`o${i}`, { board: "other" }), T0);
      }
      const port = boardPortAt(f.location);
      const seen: BoardTaskRow[] = [];
      const count = await port.readBoard("web", async (snap) => {
        let wrote = false;
        for await (const t of snap.tasks()) {
          seen.push(t);
          if (!wrote && seen.length === 10) {
            // The daemon writes while the handler reads: a new task, the last task done.
            wrote = true;
            await f!.store.tasks.create(task("late"), T0 + 5);
            await f!.store.tasks.update(ids.at(-1)!, { title: "renamed" }, T0 + 5);
          }
        }
        return snap.taskCount;
      });
      expect(count).toBe(n);
      expect(seen.map((t) => t.id)).toEqual(ids);
      expect(seen.at(-1)!.title).toBe(`t${n - 1}`);
      expect(seen.filter((t) => t.status === "done")).toHaveLength(Math.floor(n / 2));
      // The next read sees the writes.
      const after = await port.readBoard("web", async (snap) => {
        const titles: string[] = [];
        for await (const t of snap.tasks()) titles.push(t.title);
        return { count: snap.taskCount, last: titles.slice(-2) };
      });
      expect(after).toEqual({ count: n + 1, last: ["renamed", "late"] });
    });

    it("streams a board's events since a time, oldest first; null for a board that is not there", async () => {
      f = await factory.create();
      await f.store.boards.create("web", T0);
      await f.store.boards.create("other", T0);
      const a = await f.store.tasks.create(task("a"), T0);
      await f.store.tasks.create(task("x", { board: "other" }), T0 + 1_000);
      await f.store.tasks.update(a.id, { status: "done" }, T0 + 2_000);
      await f.store.tasks.update(a.id, { assignee: "ana" }, T0 + 3_000);
      const port = boardPortAt(f.location);
      const events = await port.readBoard("web", async (snap) => {
        const out = [];
        for await (const e of snap.eventsSince(T0 + 1_500)) out.push(e);
        return out;
      });
      expect(events).toEqual([
        { taskId: a.id, type: "completed", title: "a", createdAt: T0 + 2_000 },
        { taskId: a.id, type: "assigned", title: "a", createdAt: T0 + 3_000 },
      ]);
      expect(await port.readBoard("nope", async () => "read")).toBeNull();
    });

    it("gives every board's events after a cursor, page after page with no gap, and the daemon's meta", async () => {
      f = await factory.create();
      await f.store.boards.create("web", T0);
      await f.store.boards.create("ops", T0);
      for (let i = 0; i < 25; i++) await f.store.tasks.create(task(`t${i}`, { board: i % 2 ? "web" : "ops" }), T0 + i);
      const all = await f.store.taskEvents.list({ limit: 1000 });
      const port = boardPortAt(f.location);
      const paged = [];
      for (let cursor = 0; ; ) {
        const page = await port.eventsAfter(cursor, 7);
        if (page.length === 0) break;
        paged.push(...page);
        cursor = page.at(-1)!.id;
      }
      expect(paged.map((e) => e.id)).toEqual(all.map((e) => e.id).sort((x, y) => x - y));
      expect(paged[0]).toMatchObject({ taskId: expect.any(Number), board: "ops", type: "created", title: "t0", createdAt: new Date(T0).toISOString() });

      expect(await port.meta("digest.cursor")).toBeNull();
      await f.store.meta.set("digest.cursor", { lastEventId: 3, sentAt: "2026-11-01T10:00:00.000Z" });
      expect(await port.meta("digest.cursor")).toEqual({ lastEventId: 3, sentAt: "2026-11-01T10:00:00.000Z" });
    });

    it("refuses a second read at once on one port, and a snapshot used after its read", async () => {
      f = await factory.create();
      await f.store.boards.create("web", T0);
      await f.store.tasks.create(task("a"), T0);
      const port = boardPortAt(f.location);
      let kept: BoardSnapshot | undefined;
      await port.readBoard("web", async (snap) => {
        kept = snap;
        const second = await port.readBoard("web", async () => 1).then(() => null, (e: unknown) => e);
        expect(second).toBeInstanceOf(StoreError);
        expect((second as StoreError).kind).toBe("busy");
      });
      const late = await (async () => {
        for await (const _ of kept!.tasks()) return null;
        return null;
      })().catch((e: unknown) => e);
      expect(late).toBeInstanceOf(StoreError);
      expect((late as StoreError).message).toMatch(/after its read ended/);
      // The port still works after both refusals.
      expect(await port.readBoard("web", async (snap) => snap.taskCount)).toBe(1);
    });

    it("fails with a neutral error when the data is not there", async () => {
      f = await factory.create();
      const where =
        f.location.kind === "sqlite"
          ? { ...f.location, path: f.location.path + ".missing" }
          : { ...f.location, url: f.location.url.replace(/\/([^/?]+)(\?|$)/, "/$1_missing$2") };
      const err = await boardPortAt(where).task(1).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).kind).toBe("unavailable");
    });
  });
}
