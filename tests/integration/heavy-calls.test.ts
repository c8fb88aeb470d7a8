// Heavy calls (lists) take turns daemon-wide and one at a time per RPC connection
// (src/daemon/gate.ts, HEAVY_CALLS in src/daemon/server.ts), and a long job list is read in
// slices (LIST_SLICE_ROWS), as are the task list and the task events. None of that may change
// an answer: pipelined lists and light calls are all answered by their ids, and a list read in
// slices is the list read at once.

import { request } from "node:http";
import { createConnection } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { LIST_SLICE_ROWS } from "../../src/daemon/routes/slices.js";

let d: TestDaemon;
const N = 2 * LIST_SLICE_ROWS + 37;
beforeAll(async () => {
  d = await startDaemon({ config: { concurrency: 1 } });
  await d.client.call("queuePause", {});
  // Two types, interleaved: a filtered list's slices skip over the other type's ids.
  await d.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: N }, (_, i) => ({ type: i % 3 === 0 ? "quick" : "noop", payload: { i } })) });
});
afterAll(async () => {
  await d?.cleanup();
});

describe("a job list longer than a slice", () => {
  it("has every job once, newest first, with and without filters and a starting point", async () => {
    const all = (await d.client.call("jobsList", { limit: 1000 })).jobs;
    expect(all.length).toBe(N);
    const ids = all.map((j) => j.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(N);

    const noop = (await d.client.call("jobsList", { type: "noop", limit: 1000 })).jobs.map((j) => j.id);
    expect(noop).toEqual(all.filter((j) => j.type === "noop").map((j) => j.id));

    const from = ids[40]!;
    const page = (await d.client.call("jobsList", { beforeId: from, limit: LIST_SLICE_ROWS + 10 })).jobs.map((j) => j.id);
    expect(page).toEqual(ids.slice(41, 41 + LIST_SLICE_ROWS + 10));

    // A limit that ends exactly on a slice's end.
    const exact = (await d.client.call("jobsList", { limit: 2 * LIST_SLICE_ROWS })).jobs.map((j) => j.id);
    expect(exact).toEqual(ids.slice(0, 2 * LIST_SLICE_ROWS));

    // Over HTTP as over RPC: the body serialised slice by slice is the same JSON, its length told right.
    const overHttp = await new Promise<{ status: number; length: number; text: string }>((resolve, reject) => {
      request({ socketPath: d.paths.socket, path: "/jobs?limit=1000" }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, length: Number(res.headers["content-length"]), text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    });
    expect(overHttp.status).toBe(200);
    expect(overHttp.length).toBe(Buffer.byteLength(overHttp.text));
    expect(JSON.parse(overHttp.text)).toEqual({ jobs: all });
  });
});

describe("a task list and task events longer than a slice", () => {
  it("have every task and event once, oldest first, with and without filters and a starting point", async () => {
    await d.client.call("boardsAdd", { name: "other" });
    for (let i = 0; i < N; i++) await d.client.call("tasksAdd", { title: `t${i}`, ...(i % 3 === 0 ? { board: "other" } : {}) });
    const tasks = (await d.client.call("tasksList", {})).tasks;
    expect(tasks.map((t) => t.title)).toEqual(Array.from({ length: N }, (_, i) => `t${i}`));
    const other = (await d.client.call("tasksList", { board: "other" })).tasks.map((t) => t.id);
    expect(other).toEqual(tasks.filter((t) => t.board === "other").map((t) => t.id));
    const limited = (await d.client.call("tasksList", { limit: LIST_SLICE_ROWS + 1 })).tasks.map((t) => t.id);
    expect(limited).toEqual(tasks.slice(0, LIST_SLICE_ROWS + 1).map((t) => t.id));

    const events = (await d.client.call("taskEventsList", { limit: 10_000 })).events;
    expect(events.filter((e) => e.type === "created").map((e) => e.taskId)).toEqual(tasks.map((t) => t.id));
    const ids = events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    const from = ids[40]!;
    const page = (await d.client.call("taskEventsList", { afterId: from, limit: 2 * LIST_SLICE_ROWS })).events.map((e) => e.id);
    expect(page).toEqual(ids.slice(41, 41 + 2 * LIST_SLICE_ROWS));
    const onBoard = (await d.client.call("taskEventsList", { board: "other", limit: 10_000 })).events.map((e) => e.id);
    expect(onBoard).toEqual(events.filter((e) => e.board === "other").map((e) => e.id));
    // The default limit, as before slices.
    expect((await d.client.call("taskEventsList", {})).events.map((e) => e.id)).toEqual(ids.slice(0, 1000));
  });
});

describe("pipelined heavy and light calls on one RPC connection", () => {
  it("are all answered, each by its id", async () => {
    const socket = createConnection(d.paths.socket);
    socket.setEncoding("utf8");
    const replies = new Map<unknown, { status: number; body: { jobs?: unknown[]; ok?: boolean } }>();
    const calls: string[] = [];
    for (let i = 0; i < 40; i++) {
      calls.push(JSON.stringify({ id: `list-${i}`, call: "jobsList", input: { limit: 300 } }));
      calls.push(JSON.stringify({ id: `health-${i}`, call: "health" }));
    }
    let buf = "";
    let upgraded = false;
    const done = new Promise<void>((resolve, reject) => {
      socket.on("error", reject);
      socket.on("data", (chunk: string) => {
        buf += chunk;
        if (!upgraded) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          expect(buf.slice(0, 12)).toBe("HTTP/1.1 101");
          buf = buf.slice(end + 4);
          upgraded = true;
        }
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const r = JSON.parse(buf.slice(0, nl)) as { id: unknown; status: number; body: { jobs?: unknown[]; ok?: boolean } };
          buf = buf.slice(nl + 1);
          expect(replies.has(r.id)).toBe(false);
          replies.set(r.id, r);
          if (replies.size === calls.length) resolve();
        }
      });
    });
    socket.write("GET /rpc HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: teamwork-rpc\r\n\r\n" + calls.join("\n") + "\n");
    await done;
    socket.destroy();
    for (let i = 0; i < 40; i++) {
      expect(replies.get(`list-${i}`)).toMatchObject({ status: 200 });
      expect(replies.get(`list-${i}`)!.body.jobs!.length).toBe(300);
      expect(replies.get(`health-${i}`)).toMatchObject({ status: 200, body: { ok: true } });
    }
  });
});
