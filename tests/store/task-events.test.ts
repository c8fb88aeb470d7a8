// Conformance: task events. Every task write appends the events the board's policy (given at
// open) implies, in the same transaction: both or neither. Events are read by cursor: after
// an id, in id order, every event exactly once, whoever wrote it.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { forEachStore, iso, newTask, T0 } from "./suite.js";
import { taskEventPolicy } from "../../src/board/task-events.js";
import type { Task, TaskEvent } from "../../src/protocol/types.js";
import type { Store, TaskEventPolicy } from "../../src/store/types.js";

const WRITE_TASKS = fileURLToPath(new URL("./write-tasks.mjs", import.meta.url));

/** Every event, read by cursor `page` at a time. */
async function readAll(store: Store, page: number, filter: { taskId?: number; board?: string } = {}): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  for (let after = 0; ; ) {
    const got = await store.taskEvents.list({ ...filter, afterId: after, limit: page });
    out.push(...got);
    if (got.length < page) return out;
    after = got.at(-1)!.id;
  }
}

forEachStore("task events", (fx, factory) => {
  it("a create appends created (and assigned, with an assignee), with the task's title, board and time", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask({ title: "ship", assignee: "ann", status: "doing" }), T0);
    const events = await store.taskEvents.list({});
    expect(events).toEqual([
      { id: expect.any(Number), taskId: t.id, board: "default", type: "created", title: "ship", data: { status: "doing" }, createdAt: iso(T0) },
      { id: expect.any(Number), taskId: t.id, board: "default", type: "assigned", title: "ship", data: { assignee: "ann", previous: null }, createdAt: iso(T0) },
    ]);
    expect(events[1]!.id).toBeGreaterThan(events[0]!.id);
  });

  it("an update appends what it implies, with the title and board after it; no change, no event", async () => {
    const { store } = fx();
    await store.boards.create("web", T0);
    const t = await store.tasks.create(newTask({ title: "a" }), T0);
    await store.tasks.update(t.id, { title: "b", board: "web" }, T0 + 1);
    await store.tasks.update(t.id, { title: "b" }, T0 + 2); // nothing changes
    await store.tasks.update(t.id, { status: "done", assignee: "bob" }, T0 + 3);
    await store.tasks.update(t.id, { assignee: null }, T0 + 4);
    const events = (await store.taskEvents.list({ taskId: t.id })).slice(1);
    expect(events.map((e) => [e.type, e.title, e.board, e.createdAt, e.data])).toEqual([
      ["updated", "b", "web", iso(T0 + 1), { changes: { title: { from: "a", to: "b" }, board: { from: "default", to: "web" } } }],
      ["completed", "b", "web", iso(T0 + 3), {}],
      ["assigned", "b", "web", iso(T0 + 3), { assignee: "bob", previous: null }],
      ["updated", "b", "web", iso(T0 + 4), { changes: { assignee: { from: "bob", to: null } } }],
    ]);
  });

  it("a delete appends deleted with the title and status the task had; the events outlive the task", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask({ title: "gone soon", status: "doing" }), T0);
    await store.tasks.remove(t.id, T0 + 9);
    const events = await store.taskEvents.list({ taskId: t.id });
    expect(events.map((e) => [e.type, e.title, e.data, e.createdAt])).toEqual([
      ["created", "gone soon", { status: "doing" }, iso(T0)],
      ["deleted", "gone soon", { status: "doing" }, iso(T0 + 9)],
    ]);
  });

  it("the store applies the policy it was opened with, given the task before and after, inside the write", async () => {
    const { openAnother } = fx();
    const seen: string[] = [];
    const recording: TaskEventPolicy = {
      created: (t) => (seen.push(`created ${t.title} ${t.createdAt}`), [{ type: "created", data: { mine: true } }]),
      updated: (before: Task, after: Task) => (seen.push(`updated ${before.title}->${after.title} done:${after.completedAt}`), after.title === "quiet" ? [] : [{ type: "updated", data: { n: 1 } }, { type: "updated", data: { n: 2 } }]),
      deleted: (t) => (seen.push(`deleted ${t.title}`), [{ type: "deleted", data: {} }]),
    };
    const store = await openAnother({ taskEvents: recording });
    const t = await store.tasks.create(newTask({ title: "a" }), T0);
    const u = await store.tasks.update(t.id, { title: "b", status: "done" }, T0 + 1);
    // The policy says nothing happened: nothing is written, not even updatedAt.
    expect(await store.tasks.update(t.id, { title: "quiet" }, T0 + 2)).toEqual(u);
    await store.tasks.remove(t.id, T0 + 3);
    expect(seen).toEqual([`created a ${iso(T0)}`, `updated a->b done:${iso(T0 + 1)}`, "updated b->quiet done:" + iso(T0 + 1), "deleted b"]);
    expect((await store.taskEvents.list({ taskId: t.id })).map((e) => [e.type, e.data])).toEqual([
      ["created", { mine: true }],
      ["updated", { n: 1 }],
      ["updated", { n: 2 }],
      ["deleted", {}],
    ]);
  });

  it("a policy that throws: the write does not happen (the change and its events are one unit)", async () => {
    const { store: plain, openAnother } = fx();
    const t = await plain.tasks.create(newTask({ title: "a" }), T0);
    const boom = new Error("policy failed");
    const throwing: TaskEventPolicy = {
      created: () => {
        throw boom;
      },
      updated: () => {
        throw boom;
      },
      deleted: () => {
        throw boom;
      },
    };
    const store = await openAnother({ taskEvents: throwing });
    await expect(store.tasks.create(newTask({ title: "b" }), T0 + 1)).rejects.toBe(boom);
    await expect(store.tasks.update(t.id, { title: "c" }, T0 + 1)).rejects.toBe(boom);
    await expect(store.tasks.remove(t.id, T0 + 1)).rejects.toBe(boom);
    expect(await plain.tasks.list({})).toEqual([t]);
    expect((await plain.taskEvents.list({})).map((e) => e.type)).toEqual(["created"]);
  });

  it("filters: by task, by board (the board of the write), after an id, and a limit", async () => {
    const { store } = fx();
    await store.boards.create("web", T0);
    const a = await store.tasks.create(newTask({ title: "a" }), T0);
    const b = await store.tasks.create(newTask({ title: "b", board: "web" }), T0);
    await store.tasks.update(a.id, { board: "web" }, T0 + 1);
    const all = await store.taskEvents.list({});
    expect(all.map((e) => [e.taskId, e.board, e.type])).toEqual([
      [a.id, "default", "created"],
      [b.id, "web", "created"],
      [a.id, "web", "updated"],
    ]);
    expect((await store.taskEvents.list({ taskId: a.id })).map((e) => e.id)).toEqual([all[0]!.id, all[2]!.id]);
    expect((await store.taskEvents.list({ board: "web" })).map((e) => e.id)).toEqual([all[1]!.id, all[2]!.id]);
    expect((await store.taskEvents.list({ board: "nope" }))).toEqual([]);
    expect((await store.taskEvents.list({ afterId: all[0]!.id })).map((e) => e.id)).toEqual([all[1]!.id, all[2]!.id]);
    expect((await store.taskEvents.list({ afterId: all[2]!.id }))).toEqual([]);
    expect((await store.taskEvents.list({ limit: 2 })).map((e) => e.id)).toEqual([all[0]!.id, all[1]!.id]);
    expect((await store.taskEvents.list({ board: "web", taskId: a.id, afterId: 0, limit: 5 })).map((e) => e.id)).toEqual([all[2]!.id]);
  });

  it("a cursor reads every event once, in the order written, page after page", async () => {
    const { store } = fx();
    const expected: string[] = [];
    for (let i = 0; i < 30; i++) {
      const t = await store.tasks.create(newTask({ title: `t${i}`, assignee: i % 3 ? null : "ann" }), T0 + i);
      expected.push(`${t.id} created`);
      if (i % 3 === 0) expected.push(`${t.id} assigned`);
      if (i % 2) {
        await store.tasks.update(t.id, { status: "done" }, T0 + i);
        expected.push(`${t.id} completed`);
      }
      if (i % 5 === 0) {
        await store.tasks.remove(t.id, T0 + i);
        expected.push(`${t.id} deleted`);
      }
    }
    for (const page of [1, 7, 1000]) {
      const read = await readAll(store, page);
      expect(read.map((e) => `${e.taskId} ${e.type}`)).toEqual(expected);
      for (let i = 1; i < read.length; i++) expect(read[i]!.id).toBeGreaterThan(read[i - 1]!.id);
    }
  });

  it(`two handles writing while a third follows the cursor: each event read once, none missed (${factory.name})`, async () => {
    const { store, openAnother } = fx();
    const a = await openAnother();
    const b = await openAnother();
    const read: TaskEvent[] = [];
    let cursor = 0;
    let readWhileWriting = 0;
    const follow = async () => {
      const got = await store.taskEvents.list({ afterId: cursor, limit: 5 });
      read.push(...got);
      if (got.length) cursor = got.at(-1)!.id;
    };
    const writer = async (s: Store, name: string) => {
      for (let i = 0; i < 25; i++) {
        const t = await s.tasks.create(newTask({ title: `${name}${i}` }), T0 + i);
        await s.tasks.update(t.id, { status: "doing" }, T0 + i);
        await new Promise((r) => setImmediate(r));
      }
    };
    let writing = true;
    const follower = (async () => {
      // Reads between the writes (each await lets a writer in), then once more after the last.
      while (writing) {
        await follow();
        readWhileWriting = read.length;
        await new Promise((r) => setImmediate(r));
      }
      await follow();
      while (read.length < 100 && (await store.taskEvents.list({ afterId: cursor, limit: 1 })).length) await follow();
    })();
    await Promise.all([writer(a, "a"), writer(b, "b")]);
    writing = false;
    await follower;
    expect(readWhileWriting, "the follower read between the writes").toBeGreaterThan(0);
    const all = await readAll(store, 1000);
    expect(all).toHaveLength(100);
    expect(read.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(new Set(read.map((e) => e.id)).size).toBe(100);
    // Each task's own events are in the order it was written.
    for (const t of await store.tasks.list({})) {
      expect(all.filter((e) => e.taskId === t.id).map((e) => e.type)).toEqual(["created", "updated"]);
    }
  });

  it("the default policy is the board's (src/board/task-events.ts)", async () => {
    // The factory opens with it; this guards the fixture, not the store.
    const { openAnother } = fx();
    const s = await openAnother({ taskEvents: taskEventPolicy });
    const t = await s.tasks.create(newTask({ assignee: "zed" }), T0);
    expect((await s.taskEvents.list({ taskId: t.id })).map((e) => e.type)).toEqual(["created", "assigned"]);
  });

  it("3 writer processes while this one follows the cursor: every event read once, in id order, none missed", async () => {
    const { store, location } = fx();
    const perWriter = 60;
    const writers = ["a", "b", "c"].map((prefix) => {
      const child = spawn(process.execPath, [WRITE_TASKS, JSON.stringify(location), prefix, String(perWriter)], { stdio: ["pipe", "pipe", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
        child.once("exit", (code) => reject(new Error(`write-tasks exited ${code} before ready: ${err}`)));
      });
      const done = new Promise<void>((resolve, reject) => child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`write-tasks exited ${code}: ${err}`)))));
      return { child, ready, done };
    });
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.child.stdin.end("go\n");

    const read: TaskEvent[] = [];
    let cursor = 0;
    let readWhileWriting = 0;
    let writing = true;
    const finished = Promise.all(writers.map((w) => w.done)).finally(() => (writing = false));
    while (writing) {
      const got = await store.taskEvents.list({ afterId: cursor, limit: 7 });
      read.push(...got);
      if (got.length) cursor = got.at(-1)!.id;
      else await new Promise((r) => setTimeout(r, 1)); // let the writers write
    }
    await finished;
    readWhileWriting = read.length;
    for (;;) {
      const got = await store.taskEvents.list({ afterId: cursor, limit: 7 });
      if (!got.length) break;
      read.push(...got);
      cursor = got.at(-1)!.id;
    }

    const all = await readAll(store, 10_000);
    expect(all).toHaveLength(3 * perWriter * 2);
    expect(read.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(readWhileWriting, "the reader followed while the writers wrote").toBeGreaterThan(0);
    for (const t of await store.tasks.list({})) {
      expect(all.filter((e) => e.taskId === t.id).map((e) => e.type)).toEqual(["created", "updated"]);
    }
  });
});
