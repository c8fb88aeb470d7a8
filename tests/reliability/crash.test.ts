// Crash isolation: every way a handler can misbehave (throw, reject, exit its worker, throw
// from a timer, call process.abort(), hang ignoring its signal, spin the CPU, run out of
// memory, write garbage to stdout) ends only its own job, while well-behaved jobs run next to
// it in the other slots and the daemon's status answer stays fast throughout. Also: a
// graceful stop re-queues without cost, and a watcher follows its job across a restart.
// (A daemon killed with SIGKILL is chaos.test.ts's, and integration/handover.test.ts's.)

import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import type { Job, Json } from "../../src/protocol/types.js";

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

/** The slowest `daemon status` answer allowed while handlers misbehave (a 2-core machine running other suites). */
const STATUS_BOUND_MS = 500;

describe("crash isolation", () => {
  it(`fails only the misbehaving job; its neighbours complete and daemon status answers within ${STATUS_BOUND_MS} ms throughout`, async () => {
    // The timeout is what stops `spin`; it is long enough for `memory-hog` to reach its heap
    // limit first even on a loaded machine.
    d = await startDaemon({ config: { concurrency: 3, jobTimeout: "5s", cancelGrace: "200ms" } });
    const pid = d.pid;
    // [type, payload, the error it must fail with (null: it completes)]
    const kinds: [string, Json, RegExp | null][] = [
      ["throw", {}, /boom on attempt 1/],
      ["reject-async", {}, /rejected later/],
      ["exit", {}, /worker exited with code 3/],
      ["uncaught", {}, /worker crashed: uncaught in a timer/],
      ["abort", {}, /abort/i],
      ["memory-hog", {}, /out of memory/],
      ["spin", {}, /timed out after 5s/],
      ["hang-briefly", {}, /timed out after 2s/],
      ["cpu-burn", { ms: 400 }, null],
      ["garbage-stdout", {}, null],
    ];
    const latencies: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t0 = performance.now();
        const s = await d!.client.call("daemonStatus", {});
        latencies.push(performance.now() - t0);
        expect(s.pid).toBe(pid);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // Each misbehaving job is followed by a well-behaved one, so they run side by side.
    const bad: Job[] = [];
    const good: Job[] = [];
    for (const [type, payload] of kinds) {
      bad.push((await d.client.call("jobsEnqueue", { type, maxAttempts: 1, payload })).job);
      good.push((await d.client.call("jobsEnqueue", { type: "slow-progress", maxAttempts: 1, payload: { steps: 4, stepMs: 50 } })).job);
    }
    const results = await Promise.all(bad.map((j) => finished(j.id)));
    const neighbours = await Promise.all(good.map((j) => finished(j.id)));
    probing = false;
    await probe;
    results.forEach((r, i) => {
      const [type, , error] = kinds[i]!;
      expect(r.attempts, type).toBe(1);
      if (error) {
        expect(r.status, type).toBe("failed");
        expect(r.error, type).toMatch(error);
      } else expect([r.status, r.error], type).toEqual(["complete", null]);
    });
    expect(results[kinds.findIndex(([t]) => t === "garbage-stdout")]!.result).toEqual({ wrote: true });
    for (const n of neighbours) expect([n.status, n.attempts, n.errors, n.result]).toEqual(["complete", 1, [], { steps: 4 }]);
    // The same daemon, every slot still works, and nothing escaped into the daemon itself.
    expect((await d.client.call("health", {})).pid).toBe(pid);
    const { jobs: after } = await d.client.call("jobsEnqueueBatch", { jobs: Array.from({ length: 6 }, () => ({ type: "noop" })) });
    for (const j of after) expect((await finished(j.job.id)).status).toBe("complete");
    expect(d.log()).not.toMatch(/daemon\.uncaught_exception|daemon\.unhandled_rejection|request\.failed/);
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(`daemon status while handlers misbehaved: ${latencies.length} answers, median ${sorted[sorted.length >> 1]!.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`);
    expect(latencies.length).toBeGreaterThan(50);
    expect(sorted.at(-1)!).toBeLessThan(STATUS_BOUND_MS);
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
  it("reconnects and follows the job to its end", { timeout: 60_000 }, async () => {
    d = await startDaemon({ config: { shutdownGrace: "200ms" } });
    // 3 s of work: long enough for a CLI that starts slowly on a loaded machine to see it run.
    const { job } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 60, stepMs: 50 } });
    await until(job.id, (j) => j.status === "running");
    let seen = "";
    // Auto-start off: the watcher must wait for the daemon this test restarts, not race it
    // by starting one itself.
    const watching = runCli(["jobs", "watch", String(job.id)], { home: d.home, env: { TEAMWORK_NO_AUTOSTART: "1" }, timeoutMs: 30_000, onStdout: (s) => (seen = s) });
    await waitFor(() => / running /.test(seen), { what: "the watcher's first line" });
    await d.stop(); // the job is re-queued
    await d.restart();
    const r = await watching;
    expect(r.exitCode, `stderr: ${r.stderr}\nstdout: ${r.stdout}`).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.some((l) => / pending/.test(l))).toBe(true); // seen after the restart
    expect(lines.at(-1)).toMatch(/complete: \{"steps":60\}/);
  });
});
