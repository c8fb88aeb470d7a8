// The engine in-process with a ManualClock: backoff, delays and timeouts to the millisecond.

import { afterEach, describe, expect, it } from "vitest";
import { startEngine, type TestEngine } from "../helpers/engine.js";
import { waitFor } from "../helpers/wait.js";

let t: TestEngine | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const job = (id: number) => t!.engine.get(id);

describe("engine timing with an injected clock", () => {
  it("retries on the exponential backoff schedule: 1s, 2s, then fails", async () => {
    t = await startEngine({ backoff: { base: 1000, cap: 60_000 } }, { rand: () => 0 });
    const start = t.clock.now();
    const { job: j } = await t.engine.enqueue({ type: "throw", maxAttempts: 3 });

    const first = await waitFor(async () => ((await job(j.id)).attempts === 1 && (await job(j.id)).status === "pending" ? job(j.id) : null));
    expect(Date.parse(first.runAt)).toBe(start + 1000);
    expect(first.error).toBe("boom on attempt 1");

    t.clock.advance(999);
    await t.settle();
    expect((await job(j.id)).attempts).toBe(1);

    t.clock.advance(1);
    const second = await waitFor(async () => ((await job(j.id)).attempts === 2 && (await job(j.id)).status === "pending" ? job(j.id) : null));
    expect(Date.parse(second.runAt)).toBe(start + 1000 + 2000);

    t.clock.advance(2000);
    const failed = await waitFor(async () => ((await job(j.id)).status === "failed" ? job(j.id) : null));
    expect(failed.attempts).toBe(3);
    expect(failed.errors.map((e) => e.message)).toEqual(["boom on attempt 1", "boom on attempt 2", "boom on attempt 3"]);
  });

  it("caps the backoff and adds at most the jitter fraction", async () => {
    t = await startEngine({ backoff: { base: 1000, cap: 1500 } }, { rand: () => 1 });
    const start = t.clock.now();
    const { job: j } = await t.engine.enqueue({ type: "throw", maxAttempts: 2 });
    const first = await waitFor(async () => ((await job(j.id)).attempts === 1 && (await job(j.id)).status === "pending" ? job(j.id) : null));
    // 1000 * (1 + 0.2 * 1) = 1200, under the cap.
    expect(Date.parse(first.runAt)).toBe(start + 1200);
  });

  it("does not start a delayed job before its time, and starts it at its time", async () => {
    t = await startEngine();
    const { job: j } = await t.engine.enqueue({ type: "noop", delayMs: 5000 });
    await t.settle();
    t.clock.advance(4999);
    await t.settle();
    expect((await job(j.id)).status).toBe("pending");
    t.clock.advance(1);
    const done = await waitFor(async () => ((await job(j.id)).status === "complete" ? job(j.id) : null));
    expect(done.attempts).toBe(1);
  });

  it("stops a job past its timeout for real, even one that blocks its thread", async () => {
    t = await startEngine({ jobTimeout: 10_000, cancelGrace: 2000 });
    const { job: j } = await t.engine.enqueue({ type: "spin", maxAttempts: 1 });
    await waitFor(async () => (await job(j.id)).progress === 1); // the handler is spinning
    t.clock.advance(10_000); // the timeout: abort is sent, the spinning thread cannot see it
    await t.settle(100);
    expect((await job(j.id)).status).toBe("running");
    t.clock.advance(2000); // the grace period: the worker is terminated
    const failed = await waitFor(async () => ((await job(j.id)).status === "failed" ? job(j.id) : null));
    expect(failed.error).toBe("timed out after 10s");
    // The slot got a fresh worker: the next job runs.
    const { job: next } = await t.engine.enqueue({ type: "noop" });
    await waitFor(async () => (await job(next.id)).status === "complete");
  });

  it("keeps working when the clock goes backwards", async () => {
    t = await startEngine();
    const { job: a } = await t.engine.enqueue({ type: "noop", delayMs: 1000 });
    t.clock.advance(-60_000);
    const { job: b } = await t.engine.enqueue({ type: "noop" });
    await waitFor(async () => (await job(b.id)).status === "complete");
    expect((await job(a.id)).status).toBe("pending");
    t.clock.advance(61_000);
    await waitFor(async () => (await job(a.id)).status === "complete");
  });

  it("prunes finished jobs older than the retention period", async () => {
    t = await startEngine({ retention: 60_000 });
    const { job: old } = await t.engine.enqueue({ type: "noop" });
    await waitFor(async () => (await job(old.id)).status === "complete");
    t.clock.advance(30_000);
    const { job: young } = await t.engine.enqueue({ type: "noop" });
    await waitFor(async () => (await job(young.id)).status === "complete");
    const { job: waiting } = await t.engine.enqueue({ type: "noop", delayMs: 3_600_000 });
    // The daemon's own prune timer (every retention/10, at least a minute) fires at +60s.
    t.clock.advance(31_000);
    await waitFor(async () => !(await job(old.id).catch(() => null)), { what: "automatic prune" });
    expect((await job(young.id)).status).toBe("complete");
    expect((await job(waiting.id)).status).toBe("pending");
    // On demand, with a shorter age: the young one goes too; a pending job never does.
    expect(await t.engine.prune(0)).toBe(1);
    await expect(job(young.id)).rejects.toThrow(/not found/);
    expect((await job(waiting.id)).status).toBe("pending");
  });
});
