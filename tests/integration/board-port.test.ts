// A handler reads the board through ctx.board in a real daemon, in a worker thread and in a
// worker process alike: it is handed where the store is, opens its own read-only connection,
// and never sees the database's path.

import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

let d: TestDaemon | undefined;
afterEach(async () => {
  await d?.cleanup();
  d = undefined;
});

describe("ctx.board in a real daemon", () => {
  for (const isolation of ["thread", "process"] as const) {
    it(`reads a task, a board and the events from a worker ${isolation}`, async () => {
      d = await startDaemon({ config: { jobIsolation: { "board-read": isolation } } });
      await d.client.call("boardsAdd", { name: "web" });
      const a = (await d.client.call("tasksAdd", { title: "Write the docs", board: "web", assignee: "ana@example.com" })).task;
      await d.client.call("tasksAdd", { title: "Ship", board: "web" });
      await d.client.call("tasksAdd", { title: "Elsewhere" });
      const { job } = await d.client.call("jobsEnqueue", { type: "board-read", payload: { taskId: a.id, board: "web" } });
      const done = await waitFor(async () => {
        const j = (await d!.client.call("jobsGet", { id: job.id })).job;
        if (j.status === "failed") throw new Error(j.error ?? "failed");
        return j.status === "complete" ? j : null;
      });
      const r = done.result as { pid: number; task: unknown; board: unknown; events: number; keys: string[] };
      expect(r.task).toEqual({ id: a.id, title: "Write the docs", description: "", board: "web", status: "todo", assignee: "ana@example.com", dueDate: null });
      expect(r.board).toEqual({ count: 2, titles: ["Write the docs", "Ship"] });
      expect(r.events).toBeGreaterThanOrEqual(4); // three created, one assigned
      expect(r.keys).not.toContain("database");
      const daemonPid = (await d.client.call("daemonStatus", {})).pid;
      if (isolation === "process") expect(r.pid).not.toBe(daemonPid);
      else expect(r.pid).toBe(daemonPid);
    });
  }
});
