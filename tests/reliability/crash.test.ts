// Every way a job can die fails only that job; the daemon keeps answering fast; a daemon
// killed with SIGKILL loses no acknowledged job; a graceful stop re-queues without cost.

import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import type { Job } from "../../src/protocol/types.js";

let d: TestDaemon | undefined;
afterEach(async () => {
  await d?.cleanup();
  d = undefined;
});

const get = async (id: number) => (await d!.client.call("jobsGet", { id })).job;
const until = (id: number, pred: (j: Job) => boolean, timeoutMs = 15_000) =>
  waitFor(async () => {
    const j = await get(id);
    return pred(j) ? j : null;
  }, { timeoutMs, what: `job ${id}` });
const finished = (id: number, timeoutMs?: number) => until(id, (j) => ["complete", "failed", "cancelled"].includes(j.status), timeoutMs);

describe("crash isolation", () => {
  it("fails only the misbehaving job, and the daemon answers within 100 ms throughout", async () => {
    // The timeout is what stops `spin`; it is long enough for `memory-hog` to reach its heap
    // limit first even on a loaded machine.
    d = await startDaemon({ config: { concurrency: 3, jobTimeout: "5s", cancelGrace: "200ms" } });
    const kinds: [string, RegExp | null][] = [
      ["throw", /boom on attempt 1/],
      ["reject-async", /rejected later/],
      ["exit", /worker exited with code 3/],
      ["uncaught", /worker crashed: uncaught in a timer/],
      ["memory-hog", /out of memory/],
      ["spin", /timed out after 5s/],
      ["hang-briefly", /timed out after 2s/],
      ["abort", /abort/i],
      ["cpu-burn", null],
      ["garbage-stdout", null],
    ];
    const latencies: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t0 = performance.now();
        await d!.client.call("daemonStatus", {});
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const jobs = [];
    for (const [type] of kinds) jobs.push((await d.client.call("jobsEnqueue", { type, maxAttempts: 1, payload: type === "cpu-burn" ? { ms: 400 } : {} })).job);
    const results = await Promise.all(jobs.map((j) => finished(j.id)));
    probing = false;
    await probe;
    results.forEach((r, i) => {
      const [type, error] = kinds[i]!;
      if (error) {
        expect(r.status, type).toBe("failed");
        expect(r.error, type).toMatch(error);
      } else expect(r.status, type).toBe("complete");
    });
    // All slots still work.
    const { jobs: after } = await d.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 6 }, () => ({ type: "noop" })) });
    for (const j of after) expect((await finished(j.job.id)).status).toBe("complete");
    expect(latencies.length).toBeGreaterThan(10);
    expect(Math.max(...latencies)).toBeLessThan(100);
  });
});

describe("a daemon killed with SIGKILL", () => {
  it("loses no acknowledged job and runs the interrupted one again (the attempt counts)", async () => {
    d = await startDaemon({ config: { concurrency: 1 } });
    const { job: long } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 40, stepMs: 50 } });
    await until(long.id, (j) => j.status === "running" && j.progress >= 5);
    const { jobs: queued } = await d.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 100 }, (_, i) => ({ type: "noop", payload: { i } })) });
    await d.kill9();
    await d.restart();
    expect(d.log()).toMatch(/jobs.rescued count=1/);
    const done = await finished(long.id, 20_000);
    expect(done.status).toBe("complete");
    expect(done.attempts).toBe(2);
    expect(done.errors[0]!.message).toMatch(/interrupted/);
    for (const j of queued) expect((await finished(j.job.id)).status).toBe("complete");
  });
});

describe("graceful stop", () => {
  it("lets short jobs finish, re-queues long ones without counting the attempt", async () => {
    d = await startDaemon({ config: { concurrency: 2, shutdownGrace: "400ms" } });
    const { job: short } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 2, stepMs: 100 } });
    const { job: long } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 100, stepMs: 100 } });
    await until(short.id, (j) => j.status === "running");
    await until(long.id, (j) => j.status === "running");
    const code = await d.stop();
    expect(code).toBe(0);
    await d.restart();
    const s = await get(short.id);
    expect(s.status).toBe("complete");
    const l = await get(long.id);
    // After the restart it may already be running again; either way the interrupted attempt did not count.
    expect(["pending", "running"]).toContain(l.status);
    expect(l.attempts).toBeLessThanOrEqual(1);
    expect(l.errors).toEqual([]);
    await d.client.call("jobsCancel", { id: long.id });
  });
});

describe("a watcher across a daemon restart", () => {
  it("reconnects and follows the job to its end", async () => {
    d = await startDaemon({ config: { shutdownGrace: "200ms" } });
    const { job } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 20, stepMs: 50 } });
    await until(job.id, (j) => j.status === "running");
    let seen = "";
    const watching = runCli(["jobs", "watch", String(job.id)], { home: d.home, timeoutMs: 30_000, onStdout: (s) => (seen = s) });
    await waitFor(() => / running /.test(seen), { what: "the watcher's first line" });
    await d.stop(); // the job is re-queued
    await d.restart();
    const r = await watching;
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.some((l) => / pending/.test(l))).toBe(true); // seen after the restart
    expect(lines.at(-1)).toMatch(/complete: \{"steps":20\}/);
  });
});
