// The job engine through a real daemon process and its socket API.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { runningOverTime } from "../helpers/events.js";
import type { Job } from "../../src/protocol/types.js";
import type { StreamEvent } from "../../src/protocol/events.js";
import { TeamworkError } from "../../src/lib/errors.js";
import { httpRequest } from "../reliability/support.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ config: { concurrency: 2, backoff: { base: "50ms", cap: "200ms" }, cancelGrace: "300ms" } });
});
afterAll(async () => {
  await d?.cleanup();
});

const get = async (id: number) => (await d.client.call("jobsGet", { id })).job;
const until = (id: number, pred: (j: Job) => boolean, timeoutMs = 10_000) =>
  waitFor(async () => {
    const j = await get(id);
    return pred(j) ? j : null;
  }, { timeoutMs, what: `job ${id}` });
const finished = (id: number) => until(id, (j) => ["complete", "failed", "cancelled"].includes(j.status));
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: TeamworkError) => e.code,
  );

describe("enqueue", () => {
  it("answers with the stored job and runs it to completion", async () => {
    const { job, created } = await d.client.call("jobsEnqueue", { type: "noop", payload: { hello: "world" } });
    expect(created).toBe(true);
    expect(job).toMatchObject({ type: "noop", payload: { hello: "world" }, maxAttempts: 3, priority: 0, uniqueKey: null });
    expect(job.id).toBeGreaterThan(0);
    const done = await finished(job.id);
    expect(done).toMatchObject({ status: "complete", attempts: 1, progress: 100, result: { ok: true, echo: { hello: "world" } }, error: null, slot: null });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
  });

  it("refuses bad input with 400 and stores nothing", async () => {
    const before = await d.client.call("jobsList", { limit: 1_000 });
    expect(await codeOf(d.client.call("jobsEnqueue", { type: "nope" }))).toBe("invalid_input");
    expect(await codeOf(d.client.call("jobsEnqueue", { type: "noopp" }))).toBe("invalid_input");
    await expect(d.client.call("jobsEnqueue", { type: "noopp" })).rejects.toThrow(/did you mean "noop"/);
    await expect(d.client.call("jobsEnqueue", { type: "validated", payload: { n: "x" } })).rejects.toThrow(/invalid payload for job type "validated": n must be a number/);
    expect(await codeOf(d.client.call("jobsEnqueue", { type: "noop", maxAttempts: 0 }))).toBe("invalid_input");
    expect(await codeOf(d.client.call("jobsEnqueue", { type: "noop", maxAttempts: -3 }))).toBe("invalid_input");
    expect(await codeOf(d.client.call("jobsEnqueue", { type: "noop", priority: 1e9 }))).toBe("invalid_input");
    expect(await codeOf(d.client.call("jobsEnqueue", { type: "noop", runAt: "2999-01-01T00:00:00Z" }))).toBe("invalid_input");
    expect(await codeOf(d.client.call("jobsEnqueue", { type: "noop", runAt: "yesterday" }))).toBe("invalid_input");
    expect(await codeOf(d.client.call("jobsEnqueueBatch", { jobs: [{ type: "noop" }, { type: "nope" }] }))).toBe("invalid_input");
    const after = await d.client.call("jobsList", { limit: 1_000 });
    expect(after.jobs.length).toBe(before.jobs.length);
  });

  it("enqueues a batch in one call", async () => {
    const { jobs } = await d.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 50 }, (_, i) => ({ type: "noop", payload: { i } })) });
    expect(jobs).toHaveLength(50);
    expect(new Set(jobs.map((j) => j.job.id)).size).toBe(50);
    for (const j of jobs) await finished(j.job.id);
    expect((await get(jobs[49]!.job.id)).result).toEqual({ ok: true, echo: { i: 49 } });
  });

  it("enqueues a batch answered with the ids only, in input order, all or nothing", async () => {
    const { ids, created } = await d.client.call("jobsEnqueueBatchIds", {
      jobs: [
        { type: "noop", payload: { i: 0 } },
        { type: "slow-progress", uniqueKey: "ids-batch", payload: { steps: 2, stepMs: 50 } },
        { type: "slow-progress", uniqueKey: "ids-batch", payload: { steps: 9, stepMs: 50 } },
        { type: "noop", payload: { i: 3 } },
      ],
    });
    expect(ids).toHaveLength(4);
    expect(created).toBe(3);
    expect(ids[2]).toBe(ids[1]); // the live job with that key
    expect(ids[3]).toBeGreaterThan(ids[1]!);
    expect(ids[1]).toBeGreaterThan(ids[0]!);
    expect((await finished(ids[0]!)).result).toEqual({ ok: true, echo: { i: 0 } });
    expect((await finished(ids[3]!)).result).toEqual({ ok: true, echo: { i: 3 } });
    expect((await finished(ids[1]!)).result).toEqual({ steps: 2 });
    // Over HTTP too (not taken for /jobs/:id); one bad spec refuses the whole batch, naming it.
    const body = JSON.stringify({ jobs: [{ type: "noop" }, { type: "noop" }] });
    const r = await httpRequest(d.paths.socket, { method: "POST", path: "/jobs/batch/ids", headers: { "content-type": "application/json" }, body });
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body)).toEqual({ ids: [expect.any(Number), expect.any(Number)], created: 2 });
    const before = (await d.client.call("jobsList", { limit: 1_000 })).jobs.length;
    await expect(d.client.call("jobsEnqueueBatchIds", { jobs: [{ type: "noop" }, { type: "noop", priority: 5000 }] })).rejects.toThrow(/jobs\[1\]/);
    expect((await d.client.call("jobsList", { limit: 1_000 })).jobs.length).toBe(before);
  });

  it("returns the live job for a repeated unique key (the double click)", async () => {
    const first = await d.client.call("jobsEnqueue", { type: "slow-progress", uniqueKey: "report-web", payload: { steps: 3, stepMs: 50 } });
    const second = await d.client.call("jobsEnqueue", { type: "slow-progress", uniqueKey: "report-web", payload: { steps: 3, stepMs: 50 } });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.job.id).toBe(first.job.id);
    await finished(first.job.id);
    const third = await d.client.call("jobsEnqueue", { type: "slow-progress", uniqueKey: "report-web", payload: { steps: 1, stepMs: 1 } });
    expect(third.created).toBe(true);
    expect(third.job.id).not.toBe(first.job.id);
    await finished(third.job.id);
  });
});

describe("running", () => {
  it("never runs more than the pool size at once, and reuses its slots", async () => {
    const seen: StreamEvent[] = [];
    const stream = d.client.stream("eventsStream", {}, (e) => seen.push(e));
    await stream.opened;
    const { jobs } = await d.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 6 }, () => ({ type: "cpu-burn", payload: { ms: 150 } })) });
    const ids = new Set(jobs.map((j) => j.job.id));
    for (const id of ids) await finished(id);
    // Events reach a stream a few ms after the state they report can be read (the stream is
    // woken at most every 10 ms): wait for the last ones before closing it.
    await waitFor(() => [...ids].every((id) => runningOverTime(seen, ids).last.get(id) === "complete"), { what: "every job's complete event on the stream" });
    stream.close();
    const { peak, slots, last: state } = runningOverTime(seen, ids);
    expect(peak).toBe(2);
    expect([...slots].sort()).toEqual([1, 2]);
    expect([...state.values()].every((s) => s === "complete")).toBe(true);
  });

  it("starts higher priority first, then earlier runAt, then lower id", async () => {
    const blockers = await Promise.all([0, 1].map(() => d.client.call("jobsEnqueue", { type: "until-cancelled" })));
    for (const b of blockers) await until(b.job.id, (j) => j.status === "running");
    const low = await d.client.call("jobsEnqueue", { type: "noop", priority: -1 });
    const a = await d.client.call("jobsEnqueue", { type: "noop" });
    const b = await d.client.call("jobsEnqueue", { type: "noop" });
    const high1 = await d.client.call("jobsEnqueue", { type: "noop", priority: 5 });
    const high2 = await d.client.call("jobsEnqueue", { type: "noop", priority: 5 });
    const ids = new Set([low, a, b, high1, high2].map((j) => j.job.id));
    // The order of "running" events is the order of claims (timestamps tie within a millisecond).
    const started: number[] = [];
    const stream = d.client.stream("eventsStream", {}, (e) => {
      if (e.type === "job:status" && e.data.job.status === "running" && ids.has(e.data.job.id)) started.push(e.data.job.id);
    });
    await stream.opened;
    for (const blocker of blockers) await d.client.call("jobsCancel", { id: blocker.job.id });
    for (const id of ids) await finished(id);
    await waitFor(() => started.length === 5);
    stream.close();
    expect(started).toEqual([high1.job.id, high2.job.id, a.job.id, b.job.id, low.job.id]);
  });

  it("retries a failing job and completes it when it recovers", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "flaky", payload: { succeedOn: 3 } });
    const done = await finished(job.id);
    expect(done.status).toBe("complete");
    expect(done.attempts).toBe(3);
    expect(done.errors.map((e) => e.message)).toEqual(["flaky failure 1", "flaky failure 2"]);
    expect(done.result).toEqual({ attempt: 3 });
  });

  it("keeps a handler's checkpoints across attempts, so a retry skips finished work", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "checkpointed", payload: { items: ["a", "b", "c", "d"] } });
    const done = await finished(job.id);
    expect(done.status).toBe("complete");
    expect(done.attempts).toBe(2);
    expect(done.result).toEqual({ done: ["a", "b", "c", "d"], skipped: ["a", "b"], attempt: 2 });
  });

  it("fails a job whose result nests too deep for the store, and keeps running the queue", async () => {
    for (const depth of [65, 3000, 20_000]) {
      const { job } = await d.client.call("jobsEnqueue", { type: "nested-result", payload: { depth } });
      const done = await finished(job.id);
      expect(done).toMatchObject({ status: "failed", attempts: 1 });
      expect(done.error).toMatch(/result is not JSON: it nests deeper than 64 levels/);
      const { job: next } = await d.client.call("jobsEnqueue", { type: "noop" });
      expect((await finished(next.id)).status).toBe("complete");
    }
    const { job: fine } = await d.client.call("jobsEnqueue", { type: "nested-result", payload: { depth: 64 } });
    expect((await finished(fine.id)).status).toBe("complete");
  });

  it("does not retry a permanent error", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "permanent", maxAttempts: 5 });
    const done = await finished(job.id);
    expect(done).toMatchObject({ status: "failed", attempts: 1, error: "this will never work" });
    expect(done.errors[0]!.permanent).toBe(true);
  });

  it("respects a per-job maxAttempts", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "throw", maxAttempts: 2 });
    const done = await finished(job.id);
    expect(done).toMatchObject({ status: "failed", attempts: 2, error: "boom on attempt 2" });
  });

  it("pushes progress to watchers in order, and persists it", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 4, stepMs: 60 }, delayMs: 200 });
    const events: StreamEvent[] = [];
    const stream = d.client.stream("jobsStream", { id: job.id }, (e) => events.push(e));
    await finished(job.id);
    await waitFor(() => events.some((e) => e.type === "job:status" && e.data.job.status === "complete"));
    stream.close();
    expect(events[0]).toMatchObject({ type: "job:status", data: { job: { id: job.id, status: "pending" } } });
    const progress = events.filter((e) => e.type === "job:progress").map((e) => (e.data as { progress: number }).progress);
    expect(progress).toEqual([25, 50, 75, 100]);
    const statuses = events.filter((e) => e.type === "job:status").map((e) => (e.data as { job: Job }).job.status);
    expect(statuses).toEqual(["pending", "running", "complete"]);
  });

  it("streams a 404 for an unknown job", async () => {
    const s = d.client.stream("jobsStream", { id: 999_999 }, () => {});
    await expect(s.done).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("cancel and retry", () => {
  it("cancels a pending job: it never starts", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "noop", delayMs: 60_000 });
    const { job: c } = await d.client.call("jobsCancel", { id: job.id });
    expect(c.status).toBe("cancelled");
    expect(c.startedAt).toBeNull();
    expect((await get(job.id)).attempts).toBe(0);
  });

  it("cancels a running job that honours its signal", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "until-cancelled" });
    await until(job.id, (j) => j.status === "running" && j.progress === 10);
    const started = Date.now();
    const { job: c } = await d.client.call("jobsCancel", { id: job.id });
    expect(c.status).toBe("cancelled");
    expect(c.error).toBe("cancelled by user");
    expect(Date.now() - started).toBeLessThan(300); // well before the grace period ends
  });

  it("terminates a running job that ignores its signal after the grace period", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "spin" });
    await until(job.id, (j) => j.status === "running" && j.progress === 1); // spinning, deaf to its signal
    const { job: c } = await d.client.call("jobsCancel", { id: job.id });
    expect(c.status).toBe("cancelled");
    // The slot's worker was replaced: more jobs run.
    const { job: next } = await d.client.call("jobsEnqueue", { type: "noop" });
    expect((await finished(next.id)).status).toBe("complete");
  });

  it("answers 409 for a finished job and 404 for an unknown one", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "noop" });
    await finished(job.id);
    await expect(d.client.call("jobsCancel", { id: job.id })).rejects.toMatchObject({ code: "conflict", message: expect.stringMatching(/already complete/) });
    await expect(d.client.call("jobsCancel", { id: 987_654 })).rejects.toMatchObject({ code: "not_found" });
    await expect(d.client.call("jobsRetry", { id: 987_654 })).rejects.toMatchObject({ code: "not_found" });
    await expect(d.client.call("jobsRetry", { id: job.id })).rejects.toMatchObject({ code: "conflict" });
  });

  it("retries a failed job on demand", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "throw", maxAttempts: 1 });
    await finished(job.id);
    const { job: r } = await d.client.call("jobsRetry", { id: job.id });
    expect(r.status).toBe("pending");
    const done = await finished(job.id);
    expect(done).toMatchObject({ status: "failed", attempts: 2, error: "boom on attempt 2" });
  });
});

describe("listing and pruning", () => {
  it("filters by status and type, newest first, with paging", async () => {
    const { jobs } = await d.client.call("jobsEnqueueBatch", { jobs: [{ type: "validated", payload: { n: 1 } }, { type: "validated", payload: { n: 2 } }, { type: "validated", payload: { n: 3 } }] });
    for (const j of jobs) await finished(j.job.id);
    const list = (await d.client.call("jobsList", { type: "validated" })).jobs;
    expect(list.map((j) => j.id)).toEqual(jobs.map((j) => j.job.id).reverse());
    const page = (await d.client.call("jobsList", { type: "validated", limit: 1, beforeId: list[0]!.id })).jobs;
    expect(page.map((j) => j.id)).toEqual([list[1]!.id]);
    const failed = (await d.client.call("jobsList", { status: "failed" })).jobs;
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((j) => j.status === "failed")).toBe(true);
  });

  it("prunes finished jobs on demand, never live ones", async () => {
    const { job: live } = await d.client.call("jobsEnqueue", { type: "noop", delayMs: 3_600_000 });
    const { pruned } = await d.client.call("jobsPrune", { olderThan: "0s" });
    expect(pruned).toBeGreaterThan(0);
    const rest = (await d.client.call("jobsList", { limit: 1_000 })).jobs;
    expect(rest.every((j) => j.status === "pending" || j.status === "running")).toBe(true);
    expect(rest.some((j) => j.id === live.id)).toBe(true);
    await expect(d.client.call("jobsPrune", { olderThan: "soon" })).rejects.toMatchObject({ code: "invalid_input" });
  });
});
