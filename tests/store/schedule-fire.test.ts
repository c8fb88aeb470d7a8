// Conformance: schedules.fire through what fire itself returns and the schedule's record of
// its slots, without store.jobs, so that it runs on every kind (store.jobs is not built on
// PostgreSQL yet; schedules.test.ts checks the jobs too where there is a queue). Handles race
// for the same slots at once: each slot is handled by exactly one.

import { expect, it } from "vitest";
import { forEachStore, newJob, T0 } from "./suite.js";
import { StoreError } from "../../src/store/errors.js";
import { scheduledJob } from "../../src/scheduler/policy.js";
import type { FireResult, Store } from "../../src/store/types.js";

const S = (n: number) => T0 + n * 60_000;
const def = { name: "nightly", cron: "0 * * * * *", timezone: null, jobType: "report", payload: { board: "default" } };
const keyed = () => scheduledJob("nightly", newJob({ type: "report", payload: { board: "default" } }));

/** fire, tried again while the store is busy (which changed nothing). */
async function fire(store: Store, slot: number | null, job = newJob()): Promise<FireResult> {
  for (let busy = 0; ; busy++) {
    try {
      return (await store.schedules.fire("nightly", slot, slot ?? S(999), job))!;
    } catch (err) {
      if (!(err instanceof StoreError && err.kind === "busy") || busy > 100) throw err;
    }
  }
}

forEachStore("schedules: firing", (fx) => {
  it("the first firing enqueues the job it was given and records the slot; a later one under a live key is skipped with that job", async () => {
    const { store } = fx();
    await store.schedules.upsert(def, T0);
    const first = await store.schedules.fire("nightly", S(1), S(1) + 5, scheduledJob("nightly", newJob({ type: "report", priority: 3, payload: { a: 1, b: [2] } })));
    expect(first).toMatchObject({ outcome: "enqueued", job: { type: "report", payload: { a: 1, b: [2] }, status: "pending", priority: 3, attempts: 0, uniqueKey: "schedule:nightly", createdAt: S(1) + 5, runAt: T0 } });
    if (!first || !("job" in first)) throw new Error("unreachable");
    const second = await store.schedules.fire("nightly", S(2), S(2), keyed());
    expect(second).toMatchObject({ outcome: "skipped", job: { id: first!.job.id } });
    expect(await store.schedules.get("nightly")).toMatchObject({ lastSlot: S(2), lastFiredAt: S(2), lastJobId: first!.job.id, lastOutcome: "skipped" });
    expect((await store.schedules.runs("nightly")).map((r) => [r.slot, r.outcome, r.jobId])).toEqual([
      [S(2), "skipped", first!.job.id],
      [S(1), "enqueued", first!.job.id],
    ]);
    // A manual run is never refused, records no slot and leaves lastSlot alone.
    expect(await store.schedules.fire("nightly", null, S(3), keyed())).toMatchObject({ outcome: "skipped", job: { id: first!.job.id } });
    expect(await store.schedules.get("nightly")).toMatchObject({ lastSlot: S(2), lastFiredAt: S(3) });
    expect(await store.schedules.runs("nightly")).toHaveLength(2);
    expect(await store.schedules.fire("nightly", S(2), S(4), keyed())).toEqual({ outcome: "already-fired" });
    expect(await store.schedules.fire("nightly", S(1), S(4), keyed())).toEqual({ outcome: "already-fired" });
  });

  it("4 handles fire the same 40 slots at once: each slot is handled by exactly one, and recorded once", async () => {
    const { store, openAnother } = fx();
    await store.schedules.upsert(def, T0);
    const handles = [store, ...(await Promise.all([openAnother(), openAnother(), openAnother()]))];
    const slots = Array.from({ length: 40 }, (_, i) => S(i + 1));
    const results = await Promise.all(handles.map(async (h) => {
      const out: FireResult[] = [];
      for (const slot of slots) out.push(await fire(h, slot));
      return out;
    }));
    const ids: number[] = [];
    slots.forEach((slot, i) => {
      const handled = results.map((r) => r[i]!).filter((r) => r.outcome !== "already-fired");
      expect(handled, `slot ${i + 1}`).toHaveLength(1);
      const won = handled[0]!;
      expect(won.outcome).toBe("enqueued"); // no unique key: always enqueued
      if ("job" in won) ids.push(won.job.id);
    });
    expect(new Set(ids).size).toBe(slots.length);
    const runs = await store.schedules.runs("nightly", 1000);
    expect(runs.map((r) => r.slot)).toEqual([...slots].reverse());
    expect(runs.map((r) => r.jobId).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    expect((await store.schedules.get("nightly"))!.lastSlot).toBe(slots.at(-1));
  });

  it("4 handles racing under one unique key: one job is enqueued, every later slot is skipped with it", async () => {
    const { store, openAnother } = fx();
    await store.schedules.upsert(def, T0);
    const handles = [store, ...(await Promise.all([openAnother(), openAnother(), openAnother()]))];
    const slots = Array.from({ length: 20 }, (_, i) => S(i + 1));
    const results = (await Promise.all(handles.map(async (h) => Promise.all(slots.map((slot) => fire(h, slot, keyed())))))).flat();
    const handled = results.filter((r) => r.outcome !== "already-fired");
    expect(handled.filter((r) => r.outcome === "enqueued")).toHaveLength(1);
    expect(new Set(handled.map((r) => ("job" in r ? r.job.id : 0))).size).toBe(1);
    const runs = await store.schedules.runs("nightly", 1000);
    expect(new Set(runs.map((r) => r.slot)).size).toBe(runs.length);
    expect(runs.length).toBe(handled.length);
  });

  it("a slot of a paused schedule is refused as paused and not recorded, through any handle; a manual run still runs", async () => {
    const { store, openAnother } = fx();
    await store.schedules.upsert(def, T0);
    const other = await openAnother();
    await other.schedules.setEnabled("nightly", false, S(1), null); // paused through another daemon
    expect(await store.schedules.fire("nightly", S(2), S(2), keyed())).toEqual({ outcome: "paused" });
    expect(await store.schedules.runs("nightly")).toEqual([]);
    expect(await store.schedules.get("nightly")).toMatchObject({ lastSlot: null, lastJobId: null });
    expect(await store.schedules.fire("nightly", null, S(3), keyed())).toMatchObject({ outcome: "enqueued" });
    await other.schedules.setEnabled("nightly", true, S(4), null);
    expect(await store.schedules.fire("nightly", S(5), S(5), keyed())).toMatchObject({ outcome: "skipped" });
  });

  it("a slot later than the store's clock is refused as early where the store has a clock of its own; nothing is recorded", async (ctx) => {
    const { store, location } = fx();
    await store.schedules.upsert(def, T0);
    const ahead = Date.now() + 3_600_000; // a daemon whose clock is an hour fast
    const r = await store.schedules.fire("nightly", ahead, ahead, keyed());
    if (location.kind === "sqlite") {
      // SQLite's clock is the daemon's own: there is no other clock to be ahead of.
      expect(r).toMatchObject({ outcome: "enqueued" });
      ctx.skip();
    }
    expect(r).toMatchObject({ outcome: "early" });
    if (r?.outcome !== "early") throw new Error("unreachable");
    expect(Math.abs(r.storeNow - Date.now())).toBeLessThan(60_000);
    expect(await store.schedules.runs("nightly")).toEqual([]);
    expect(await store.schedules.get("nightly")).toMatchObject({ lastSlot: null });
    const due = Date.now() - 1000;
    expect(await store.schedules.fire("nightly", due, due, keyed())).toMatchObject({ outcome: "enqueued" });
  });
});
