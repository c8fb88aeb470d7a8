// The scheduler in-process with a ManualClock (exact slots, restarts, pause) and through a
// real daemon with second-level schedules (real firings).

import { existsSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startEngine, type TestEngine } from "../helpers/engine.js";
import { startDaemon, tempHome, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { runCli } from "../helpers/cli.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import { createLogger } from "../../src/lib/logger.js";

let t: TestEngine | undefined;
let d: TestDaemon | undefined;
afterEach(async () => {
  await t?.close();
  await d?.cleanup();
  t = undefined;
  d = undefined;
});

const scheduler = (e: TestEngine) => new Scheduler({ store: e.store, engine: e.engine, clock: e.clock, log: createLogger((l) => e.logs.push(l)), builtins: [] });

describe("scheduler with an injected clock", () => {
  it("fires each slot once, even when the same slot is offered twice (a restart at that moment)", async () => {
    t = await startEngine({}, { start: Date.parse("2026-03-01T10:00:00.500Z") });
    const s = scheduler(t);
    await s.start();
    await s.set({ name: "tick", cron: "* * * * * *", timezone: null, jobType: "noop", payload: {} });
    const slot = Date.parse("2026-03-01T10:00:01Z");
    expect((await s.fire("tick", slot))!.outcome).toBe("enqueued");
    expect((await s.fire("tick", slot))!.outcome).toBe("already-fired");
    expect((await s.fire("tick", slot - 1000))!.outcome).toBe("already-fired");
    // A second scheduler on the same store (the daemon after a restart) agrees.
    expect((await scheduler(t).fire("tick", slot))!.outcome).toBe("already-fired");
    s.stop();
  });

  it("fires on its timers as the clock advances, skipping slots whose previous run is live", async () => {
    t = await startEngine({}, { start: Date.parse("2026-03-01T10:00:00.500Z") });
    const s = scheduler(t);
    await s.start();
    await s.set({ name: "wait", cron: "* * * * * *", timezone: null, jobType: "until-cancelled", payload: {} });
    t.clock.advance(500); // 10:00:01
    const first = await waitFor(async () => (await t!.store.schedules.get("wait"))?.lastJobId);
    await waitFor(async () => (await t!.engine.get(first)).status === "running");
    t.clock.advance(1000); // 10:00:02: the first run is still going
    await waitFor(async () => (await t!.store.schedules.get("wait"))?.lastOutcome === "skipped");
    const jobs = await t.engine.list({ type: "until-cancelled" });
    expect(jobs).toHaveLength(1);
    await t.engine.cancel(first);
    t.clock.advance(1000); // 10:00:03: free again
    await waitFor(async () => (await t!.store.schedules.get("wait"))?.lastOutcome === "enqueued" && (await t!.engine.list({ type: "until-cancelled" })).length === 2);
    const second = (await t.store.schedules.get("wait"))!.lastJobId!;
    await t.engine.cancel(second);
    s.stop();
  });

  it("catches up once after downtime, and not at all for slots missed while paused", async () => {
    t = await startEngine({}, { start: Date.parse("2026-03-01T10:00:00.500Z") });
    let s = scheduler(t);
    await s.start();
    await s.set({ name: "min", cron: "0 * * * * *", timezone: null, jobType: "noop", payload: {} });
    s.stop(); // the daemon goes down
    t.clock.advance(10 * 60_000); // ten slots pass
    s = scheduler(t);
    await s.start(); // and comes back
    await waitFor(async () => (await t!.engine.list({ type: "noop" }))[0]?.status === "complete");
    expect((await t.store.schedules.get("min"))!.lastSlot).toBe(Date.parse("2026-03-01T10:10:00Z"));
    await s.pause("min");
    s.stop();
    t.clock.advance(5 * 60_000);
    s = scheduler(t);
    await s.start();
    await s.resume("min");
    await new Promise((r) => setTimeout(r, 50));
    expect(await t.engine.list({ type: "noop" })).toHaveLength(1);
    t.clock.advance(60_000);
    await waitFor(async () => (await t!.engine.list({ type: "noop" })).length === 2);
    s.stop();
  });

  it("keeps a schedule's zone, type and payload when only its expression changes", async () => {
    t = await startEngine();
    const s = scheduler(t);
    await s.set({ name: "r", cron: "0 0 9 * * *", timezone: "Europe/Oslo", jobType: "validated", payload: { n: 1 } });
    const changed = await s.set({ name: "r", cron: "0 30 9 * * *" });
    expect(changed).toMatchObject({ cron: "0 30 9 * * *", timezone: "Europe/Oslo", jobType: "validated", payload: { n: 1 } });
    expect((await s.set({ name: "r", cron: "0 30 9 * * *", timezone: null })).timezone).toBeNull();
    s.stop();
  });

  it("refuses invalid expressions, zones and job types without storing anything", async () => {
    t = await startEngine();
    const s = scheduler(t);
    await expect(s.set({ name: "a", cron: "nope", timezone: null, jobType: "noop" })).rejects.toThrow(/invalid cron expression/);
    await expect(s.set({ name: "a", cron: "* * * * * *", timezone: "Nowhere/Land", jobType: "noop" })).rejects.toThrow(/unknown time zone/);
    await expect(s.set({ name: "a", cron: "* * * * * *", timezone: null, jobType: "nope" })).rejects.toThrow(/unknown job type/);
    await expect(s.pause("a")).rejects.toThrow(/not found/);
    expect(await t.store.schedules.list()).toEqual([]);
  });
});

describe("cleanup through a real daemon with a second-level schedule", () => {
  it("removes old files, keeps young ones, never follows symlinks, and keeps stats", async () => {
    const home = tempHome();
    const tmp = join(home, "uploads", "tmp");
    const outside = join(home, "precious");
    mkdirSync(tmp, { recursive: true });
    mkdirSync(outside, { recursive: true });
    const old = Date.now() / 1000 - 3 * 3600;
    const put = (path: string, bytes: number, mtime?: number) => {
      writeFileSync(path, Buffer.alloc(bytes, 1));
      if (mtime) utimesSync(path, mtime, mtime);
    };
    put(join(tmp, "old-1.png"), 1000, old);
    put(join(tmp, "old-2.png"), 2500, old);
    put(join(tmp, "young.png"), 700);
    mkdirSync(join(tmp, "sub"));
    put(join(tmp, "sub", "old-3.bin"), 300, old);
    put(join(outside, "keep.txt"), 50, old);
    symlinkSync(outside, join(tmp, "link-to-outside"));
    d = await startDaemon({ home, config: { cleanup: { maxAge: "1h" } } });
    const set = await d.client.call("schedulesSet", { name: "cleanup", cron: "* * * * * *" });
    expect(set.schedule.type).toBe("cleanup");
    const stats = await waitFor(async () => {
      const s = await d!.client.call("cleanupStats", {});
      return s.total.runs >= 2 ? s : null;
    }, { timeoutMs: 8000 });
    expect(stats.total.files).toBe(3);
    expect(stats.total.bytes).toBe(3800);
    expect(stats.lastRun!.files).toBe(0);
    expect(existsSync(join(tmp, "old-1.png"))).toBe(false);
    expect(existsSync(join(tmp, "sub", "old-3.bin"))).toBe(false);
    expect(existsSync(join(tmp, "young.png"))).toBe(true);
    expect(existsSync(join(outside, "keep.txt"))).toBe(true); // the link's target is untouched
    expect(stats.schedule!.nextRunAt).not.toBeNull();
    const human = await runCli(["cleanup", "stats"], { home });
    expect(human.stdout).toContain("max age:    1h\n");
    expect(human.stdout).toMatch(/removed 0 files,/);
    expect(human.stdout).toMatch(/total: +3 files, 3\.7 KiB in \d+ runs/);

    // Pause: no more runs.
    await d.client.call("schedulesPause", { name: "cleanup" });
    const paused = (await d.client.call("cleanupStats", {})).total.runs;
    // Proof that time moved on: a second every-second schedule fires twice meanwhile.
    await d.client.call("schedulesSet", { name: "beat", cron: "* * * * * *", type: "noop" });
    await waitFor(async () => (await d!.client.call("jobsList", { type: "noop", status: "complete" })).jobs.length >= 2, { timeoutMs: 8000 });
    await d.client.call("schedulesRemove", { name: "beat" });
    expect((await d.client.call("cleanupStats", {})).total.runs).toBe(paused);
    const list = (await d.client.call("schedulesList", {})).schedules.find((s) => s.name === "cleanup")!;
    expect(list).toMatchObject({ enabled: false, nextRunAt: null, lastOutcome: "enqueued" });
    expect(list.lastJob!.status).toBe("complete");
    // Resume: runs again.
    await d.client.call("schedulesResume", { name: "cleanup" });
    await waitFor(async () => (await d!.client.call("cleanupStats", {})).total.runs > paused, { timeoutMs: 5000 });
  });

  it("runs a missed slot once after downtime", async () => {
    d = await startDaemon();
    await d.client.call("schedulesSet", { name: "sweep", cron: "* * * * * *", type: "noop" });
    await waitFor(async () => (await d!.client.call("jobsList", { type: "noop" })).jobs.length >= 1, { timeoutMs: 5000 });
    await d.stop();
    const before = d.log().match(/schedule.fired schedule=sweep/g)!.length;
    await new Promise((r) => setTimeout(r, 3000)); // three slots pass while down
    await d.restart();
    const after = d.log();
    expect(after.match(/schedule.catch_up schedule=sweep/g)).toHaveLength(1);
    const jobs = (await d.client.call("jobsList", { type: "noop", limit: 1000 })).jobs;
    // Every firing enqueued one job; the catch-up was one firing, not three.
    expect(jobs.length).toBeLessThanOrEqual(before + 1 + 2);
    await d.client.call("schedulesRemove", { name: "sweep" });
  });
});
