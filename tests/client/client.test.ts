// The public client (src/index.ts: connect) against a real daemon on a temp home: jobs,
// tasks and boards, queue, watch across a restart, wait and its ends, and errors.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { connect, JobFailedError, TeamworkError, type StreamEvent, type TeamworkClient } from "../../src/index.js";
import { startDaemon, tempHome, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { finalJob } from "../../src/client/watch.js";

let d: TestDaemon;
let tw: TeamworkClient;

beforeAll(async () => {
  d = await startDaemon();
  tw = await connect({ home: d.home });
});

afterAll(async () => {
  tw?.close();
  await d?.cleanup();
});

async function rejection(p: Promise<unknown>): Promise<TeamworkError> {
  const err = await p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TeamworkError);
  return err as TeamworkError;
}

describe("connect", () => {
  it("finds the daemon through TEAMWORK_HOME as the CLI does", async () => {
    const other = await connect({ env: { ...process.env, TEAMWORK_HOME: d.home } });
    expect((await other.daemon.health()).pid).toBe(d.pid);
    other.close();
  });

  it("connects to a socket given as such, without a home; autostart then needs the home", async () => {
    const bySocket = await connect({ socket: d.paths.socket, env: {} });
    expect((await bySocket.daemon.health()).pid).toBe(d.pid);
    bySocket.close();
    const err = await rejection(connect({ socket: "/nonexistent/daemon.sock", autostart: true, env: {} }));
    expect([err.code, err.hint]).toEqual(["invalid_input", "pass `home` instead of `socket`"]);
  });

  it("rejects with daemon_unreachable (503, with a hint) when no daemon answers", async () => {
    const home = tempHome();
    try {
      const err = await rejection(connect({ home }));
      expect([err.code, err.status]).toEqual(["daemon_unreachable", 503]);
      expect(err.hint).toMatch(/teamwork daemon start/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("starts the daemon when autostart is on", async () => {
    const home = tempHome();
    const started = await connect({ home, autostart: true });
    try {
      const status = await started.daemon.status();
      expect(status.home).toBe(home);
      await started.daemon.stop();
    } finally {
      started.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("jobs", () => {
  it("enqueues, and waits for the result", async () => {
    const { job, created } = await tw.jobs.enqueue("noop", { n: 1 });
    expect(created).toBe(true);
    expect(job.status).toBe("pending");
    expect(await tw.jobs.wait(job.id)).toEqual({ ok: true, echo: { n: 1 } });
  });

  it("enqueues with options: a unique key returns the live job, a delay postpones it", async () => {
    const first = await tw.jobs.enqueue("noop", {}, { uniqueKey: "client-once", delay: "1h", priority: 5, maxAttempts: 2 });
    const again = await tw.jobs.enqueue("noop", {}, { uniqueKey: "client-once" });
    expect(again).toMatchObject({ created: false, job: { id: first.job.id } });
    expect(first.job).toMatchObject({ priority: 5, maxAttempts: 2, uniqueKey: "client-once" });
    expect(Date.parse(first.job.runAt)).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect((await tw.jobs.why(first.job.id)).code).toBe("scheduled");
    expect((await tw.jobs.cancel(first.job.id)).status).toBe("cancelled");
  });

  it("enqueues a batch in one commit, and none of it when one job is refused", async () => {
    const batch = await tw.jobs.enqueueMany([
      { type: "noop", payload: { i: 1 } },
      { type: "noop", payload: { i: 2 }, priority: 3 },
    ]);
    expect(batch.map((b) => b.created)).toEqual([true, true]);
    expect(batch[1]!.job.priority).toBe(3);
    for (const b of batch) await tw.jobs.wait(b.job.id);

    const before = await tw.jobs.page({ limit: 1 });
    const err = await rejection(tw.jobs.enqueueMany([{ type: "noop" }, { type: "no-such-type" }]));
    expect([err.code, err.status]).toEqual(["invalid_input", 400]);
    expect(err.message).toMatch(/no-such-type/);
    expect((await tw.jobs.page({ limit: 1 }))[0]!.id).toBe(before[0]!.id);
  });

  it("lists jobs a page at a time as an async iterator", async () => {
    const made = await tw.jobs.enqueueMany(Array.from({ length: 7 }, (_, i) => ({ type: "noop", payload: { page: i }, delay: "1h" })));
    const ids: number[] = [];
    for await (const j of tw.jobs.list({ type: "noop", status: "pending", pageSize: 3 })) ids.push(j.id);
    expect(ids).toEqual(made.map((m) => m.job.id).reverse());
    const limited: number[] = [];
    for await (const j of tw.jobs.list({ type: "noop", status: "pending", pageSize: 2, limit: 5 })) limited.push(j.id);
    expect(limited).toEqual(ids.slice(0, 5));
    for (const m of made) await tw.jobs.cancel(m.job.id);
  });

  it("watches a job to its end: status, progress and log events, the final status last", async () => {
    const { job } = await tw.jobs.enqueue("slow-progress", { steps: 3, stepMs: 20 });
    const events: StreamEvent[] = [];
    for await (const e of tw.jobs.watch(job.id)) events.push(e);
    const last = events.at(-1)!;
    expect(last.type === "job:status" && last.data.job.status).toBe("complete");
    expect(events.filter((e) => e.type === "job:progress").map((e) => e.data.progress)).toContain(100);
    expect((await tw.jobs.get(job.id)).result).toEqual({ steps: 3 });
  });

  it("reads a job's logs", async () => {
    const { job } = await tw.jobs.enqueue("chatty", { lines: 2 });
    await tw.jobs.wait(job.id);
    expect((await tw.jobs.logs(job.id)).map((l) => l.message).filter((m) => m.startsWith("line"))).toEqual(["line 1", "line 2"]);
  });

  it("wait rejects with JobFailedError carrying the job's last error", async () => {
    const { job } = await tw.jobs.enqueue("permanent");
    const err = await rejection(tw.jobs.wait(job.id));
    expect(err).toBeInstanceOf(JobFailedError);
    const failed = err as JobFailedError;
    expect([failed.code, failed.job.status, failed.lastError?.message]).toEqual(["job_failed", "failed", "this will never work"]);
    expect(failed.message).toBe(`job ${job.id} (permanent) failed: this will never work`);
  });

  it("wait gives up after its timeout, and on abort, while the job goes on; cancel ends it", async () => {
    const { job } = await tw.jobs.enqueue("until-cancelled");
    const timedOut = await rejection(tw.jobs.wait(job.id, { timeout: 200 }));
    expect(timedOut.code).toBe("timeout");
    expect(timedOut.message).toMatch(new RegExp(`job ${job.id} did not finish within`));

    const controller = new AbortController();
    const waiting = tw.jobs.wait(job.id, { signal: controller.signal });
    // Aborted once the job runs (as a watch of its own sees).
    for await (const e of tw.jobs.watch(job.id)) if (e.type === "job:status" && e.data.job.status === "running") break;
    controller.abort();
    expect((await rejection(waiting)).code).toBe("aborted");
    expect((await tw.jobs.get(job.id)).status).toBe("running");

    const cancelled = tw.jobs.wait(job.id);
    await tw.jobs.cancel(job.id);
    const err = await rejection(cancelled);
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).job.status).toBe("cancelled");
  });

  it("retry puts a failed job back", async () => {
    const { job } = await tw.jobs.enqueue("permanent");
    await tw.jobs.wait(job.id).catch(() => {});
    const again = await tw.jobs.retry(job.id);
    expect(again.status).toBe("pending");
  });

  it("errors carry the protocol's code, the HTTP status and the hint", async () => {
    const missing = await rejection(tw.jobs.get(999_999));
    expect([missing.code, missing.status]).toEqual(["not_found", 404]);
    const bad = await rejection(tw.jobs.enqueue("reprot"));
    expect([bad.code, bad.status]).toEqual(["invalid_input", 400]);
    expect(bad.message).toMatch(/did you mean "report"/);
    expect(bad.hint).toMatch(/known types/);
    const { job } = await tw.jobs.enqueue("noop");
    await tw.jobs.wait(job.id);
    const conflict = await rejection(tw.jobs.cancel(job.id));
    expect([conflict.code, conflict.status]).toEqual(["conflict", 409]);
  });

  it("watch resumes across a daemon restart and sees the job to its end", async () => {
    const { job } = await tw.jobs.enqueue("noop", {}, { delay: "2s" });
    const seen: string[] = [];
    const lost: unknown[] = [];
    let restarted = false;
    for await (const e of tw.jobs.watch(job.id, { onLost: (err) => lost.push(err) })) {
      if (e.type === "job:status") seen.push(e.data.job.status);
      if (!restarted) {
        restarted = true;
        await d.stop();
        await d.restart();
      }
    }
    expect(seen[0]).toBe("pending");
    expect(seen.at(-1)).toBe("complete");
    expect((await tw.jobs.get(job.id)).status).toBe("complete");
  });

  it("the read of a watched job once it ended waits for a daemon that went away just then (it was stopping)", async () => {
    const { job } = await tw.jobs.enqueue("noop", {});
    await waitFor(async () => (await tw.jobs.get(job.id)).status === "complete", { what: "the job to complete" });
    await d.stop();
    // What wait() and `teamwork jobs watch` do after the final event: the daemon is gone now.
    const reading = finalJob(tw.transport, job.id);
    await d.restart();
    expect(await reading).toMatchObject({ id: job.id, status: "complete" });
  });
});

describe("tasks, boards, queue, schedules", () => {
  it("does what the CLI's commands do", async () => {
    const board = await tw.boards.add("client-web");
    expect(board.name).toBe("client-web");
    expect((await tw.boards.list()).map((b) => b.name)).toContain("client-web");
    const task = await tw.tasks.add({ title: "Write the client", board: "client-web", dueDate: "2026-12-31" });
    expect((await tw.tasks.edit(task.id, { status: "doing", description: "typed" })).status).toBe("doing");
    const { task: assigned, job } = await tw.tasks.assign(task.id, "ana@example.com");
    expect([assigned.assignee, job?.type]).toEqual(["ana@example.com", "assignment-email"]);
    expect((await tw.tasks.list({ board: "client-web" })).map((t) => t.id)).toEqual([task.id]);
    expect((await tw.tasks.done(task.id)).status).toBe("done");
    const shown = await tw.tasks.show(task.id);
    expect(shown.events.map((e) => e.type)).toEqual(["created", "updated", "assigned", "completed"]);
    expect((await tw.tasks.remove(task.id)).id).toBe(task.id);
    expect((await rejection(tw.tasks.show(task.id))).code).toBe("not_found");
  });

  it("pauses and resumes the queue, reads stats, sets and removes a schedule", async () => {
    expect((await tw.queue.pause("noop")).paused.types).toEqual(["noop"]);
    const { job } = await tw.jobs.enqueue("noop");
    expect((await tw.jobs.why(job.id)).code).toBe("type_paused");
    await tw.queue.resume("noop");
    await tw.jobs.wait(job.id);
    const stats = await tw.queue.stats({ since: "1h" });
    expect(stats.types.find((t) => t.type === "noop")?.complete).toBeGreaterThan(0);
    const s = await tw.schedules.set("client-nightly", { cron: "0 3 * * *", type: "noop", payload: { nightly: true } });
    expect(s.nextRunAt).not.toBeNull();
    expect((await tw.schedules.pause("client-nightly")).enabled).toBe(false);
    expect((await tw.schedules.list()).map((x) => x.name)).toContain("client-nightly");
    await tw.schedules.remove("client-nightly");
  });
});
