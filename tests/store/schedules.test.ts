// Conformance: schedules. Stored by name; upsert changes what to run and when, never the
// record of what was handled (lastSlot and the rest); ensure never touches an existing one;
// setEnabled can move lastSlot forward (slots passed while paused are skipped), never back.
// fire handles a slot once, whoever tries; a live job under the job's unique key means skipped.

import { expect, it } from "vitest";
import { forEachStore, newJob, T0 } from "./suite.js";
import { scheduledJob } from "../../src/scheduler/policy.js";
import type { FireResult, Store } from "../../src/store/types.js";

/** The id of the job a firing enqueued or skipped for. */
function jobId(r: FireResult | null): number {
  if (!r || !("job" in r)) throw new Error(`expected a firing with a job, got ${JSON.stringify(r)}`);
  return r.job.id;
}

const def = (over: Partial<{ name: string; cron: string; timezone: string | null; jobType: string; payload: import("../../src/protocol/types.js").Json }> = {}) => ({
  name: "nightly",
  cron: "0 0 3 * * *",
  timezone: "Europe/Oslo",
  jobType: "report",
  payload: { board: "default", format: "csv" },
  ...over,
});

forEachStore("schedules", (fx) => {
  it("upsert creates a schedule, enabled, never handled; get and list give it back", async () => {
    const { store } = fx();
    const s = await store.schedules.upsert(def(), T0);
    expect(s).toEqual({
      name: "nightly",
      cron: "0 0 3 * * *",
      timezone: "Europe/Oslo",
      jobType: "report",
      payload: { board: "default", format: "csv" },
      enabled: true,
      lastSlot: null,
      lastFiredAt: null,
      lastJobId: null,
      lastOutcome: null,
      createdAt: T0,
      updatedAt: T0,
    });
    expect(await store.schedules.get("nightly")).toEqual(s);
    expect(await store.schedules.list()).toEqual([s]);
  });

  it("an unknown name: get null, setEnabled null, remove false", async () => {
    const { store } = fx();
    expect(await store.schedules.get("nope")).toBeNull();
    expect(await store.schedules.setEnabled("nope", false, T0, null)).toBeNull();
    expect(await store.schedules.remove("nope")).toBe(false);
  });

  it("lists by name", async () => {
    const { store } = fx();
    for (const name of ["b", "c", "a"]) await store.schedules.upsert(def({ name }), T0);
    expect((await store.schedules.list()).map((s) => s.name)).toEqual(["a", "b", "c"]);
  });

  it("upsert of an existing schedule changes expression, zone, type and payload; keeps enabled, lastSlot and createdAt", async () => {
    const { store } = fx();
    await store.schedules.upsert(def(), T0);
    await store.schedules.setEnabled("nightly", false, T0 + 1, T0 - 5000);
    const s = await store.schedules.upsert(def({ cron: "0 30 4 * * *", timezone: null, jobType: "digest", payload: [1, 2] }), T0 + 2);
    expect(s).toMatchObject({ cron: "0 30 4 * * *", timezone: null, jobType: "digest", payload: [1, 2], enabled: false, lastSlot: T0 - 5000, createdAt: T0, updatedAt: T0 + 2 });
  });

  it("ensure creates a missing schedule and leaves an existing one as it is", async () => {
    const { store } = fx();
    await store.schedules.ensure(def({ name: "cleanup", cron: "0 0 * * * *", jobType: "cleanup", payload: {} }), T0);
    const created = await store.schedules.get("cleanup");
    expect(created).toMatchObject({ cron: "0 0 * * * *", enabled: true, createdAt: T0 });
    await store.schedules.setEnabled("cleanup", false, T0 + 1, null);
    await store.schedules.ensure(def({ name: "cleanup", cron: "* * * * * *", jobType: "other", payload: {} }), T0 + 2);
    expect(await store.schedules.get("cleanup")).toEqual({ ...created, enabled: false, updatedAt: T0 + 1 });
  });

  it("setEnabled pauses and resumes; skipUntil moves lastSlot forward, never back", async () => {
    const { store } = fx();
    await store.schedules.upsert(def(), T0);
    expect(await store.schedules.setEnabled("nightly", false, T0 + 1, null)).toMatchObject({ enabled: false, lastSlot: null, updatedAt: T0 + 1 });
    expect(await store.schedules.setEnabled("nightly", true, T0 + 2, T0 + 1000)).toMatchObject({ enabled: true, lastSlot: T0 + 1000, updatedAt: T0 + 2 });
    expect(await store.schedules.setEnabled("nightly", true, T0 + 3, T0 + 500)).toMatchObject({ lastSlot: T0 + 1000 });
    expect(await store.schedules.setEnabled("nightly", false, T0 + 4, null)).toMatchObject({ enabled: false, lastSlot: T0 + 1000 });
    expect(await store.schedules.get("nightly")).toMatchObject({ enabled: false, lastSlot: T0 + 1000 });
  });

  it("remove deletes the schedule; a schedule made again under its name starts afresh", async () => {
    const { store } = fx();
    await store.schedules.upsert(def(), T0);
    await store.schedules.setEnabled("nightly", true, T0, T0 + 9000);
    expect(await store.schedules.remove("nightly")).toBe(true);
    expect(await store.schedules.get("nightly")).toBeNull();
    expect(await store.schedules.remove("nightly")).toBe(false);
    expect(await store.schedules.upsert(def(), T0 + 1)).toMatchObject({ lastSlot: null, createdAt: T0 + 1 });
  });

  it("two handles: each sees the other's schedules; ensure from both at once creates one", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    await store.schedules.upsert(def(), T0);
    expect(await other.schedules.get("nightly")).toEqual(await store.schedules.get("nightly"));
    await Promise.all([store.schedules.ensure(def({ name: "digest", jobType: "a" }), T0), other.schedules.ensure(def({ name: "digest", jobType: "b" }), T0)]);
    expect((await store.schedules.list()).map((s) => s.name)).toEqual(["digest", "nightly"]);
    expect(["a", "b"]).toContain((await other.schedules.get("digest"))!.jobType);
  });

  const S = (n: number) => T0 + n * 60_000; // a slot a minute
  const job = (over = {}) => scheduledJob("nightly", newJob({ type: "report", payload: { board: "default" }, ...over }));
  const setUp = async (store: Store) => store.schedules.upsert(def(), T0);

  it("fire of an unknown schedule: null, and nothing is added", async () => {
    const { store } = fx();
    expect(await store.schedules.fire("nope", S(1), S(1), job())).toBeNull();
    expect(await store.jobs.list({})).toEqual([]);
  });

  it("the first firing of a slot enqueues the job and records the slot", async () => {
    const { store } = fx();
    await setUp(store);
    const r = await store.schedules.fire("nightly", S(1), S(1) + 5, job({ priority: 3 }));
    expect(r).toMatchObject({ outcome: "enqueued", job: { type: "report", payload: { board: "default" }, status: "pending", priority: 3, uniqueKey: "schedule:nightly", createdAt: S(1) + 5 } });
    const id = jobId(r);
    expect(await store.jobs.get(id)).toMatchObject({ status: "pending", uniqueKey: "schedule:nightly" });
    expect(await store.schedules.get("nightly")).toMatchObject({ lastSlot: S(1), lastFiredAt: S(1) + 5, lastJobId: id, lastOutcome: "enqueued" });
    expect(await store.schedules.runs("nightly")).toEqual([{ schedule: "nightly", slot: S(1), firedAt: S(1) + 5, outcome: "enqueued", jobId: id }]);
  });

  it("a slot handled already, or at or before the last one: already-fired, nothing added or recorded", async () => {
    const { store } = fx();
    await setUp(store);
    await store.schedules.fire("nightly", S(2), S(2), job());
    const before = await store.schedules.get("nightly");
    expect(await store.schedules.fire("nightly", S(2), S(2) + 1, job())).toEqual({ outcome: "already-fired" });
    expect(await store.schedules.fire("nightly", S(1), S(2) + 1, job())).toEqual({ outcome: "already-fired" });
    expect(await store.jobs.list({})).toHaveLength(1);
    expect(await store.schedules.get("nightly")).toEqual(before);
    expect((await store.schedules.runs("nightly")).map((r) => r.slot)).toEqual([S(2)]);
    // Slots skipped by setEnabled (paused) count as handled too.
    await store.schedules.setEnabled("nightly", true, S(5), S(5));
    expect(await store.schedules.fire("nightly", S(4), S(5), job())).toEqual({ outcome: "already-fired" });
    expect(await store.schedules.fire("nightly", S(5), S(5), job())).toEqual({ outcome: "already-fired" });
    expect((await store.schedules.fire("nightly", S(6), S(6), job()))!.outcome).toBe("skipped");
  });

  it("a later slot while the job under the same key is live: skipped with that job; once it is not, enqueued", async () => {
    const { store } = fx();
    await setUp(store);
    const first = await store.schedules.fire("nightly", S(1), S(1), job());
    const firstId = jobId(first);
    const second = await store.schedules.fire("nightly", S(2), S(2), job());
    expect(second).toMatchObject({ outcome: "skipped", job: { id: firstId, status: "pending" } });
    expect(await store.jobs.list({})).toHaveLength(1);
    expect(await store.schedules.get("nightly")).toMatchObject({ lastSlot: S(2), lastJobId: firstId, lastOutcome: "skipped" });
    await store.jobs.cancelPending(firstId, S(2) + 1);
    const third = await store.schedules.fire("nightly", S(3), S(3), job());
    expect(third).toMatchObject({ outcome: "enqueued" });
    const thirdId = jobId(third);
    expect(thirdId).not.toBe(firstId);
    expect((await store.schedules.runs("nightly")).map((r) => [r.slot, r.outcome, r.jobId])).toEqual([
      [S(3), "enqueued", thirdId],
      [S(2), "skipped", firstId],
      [S(1), "enqueued", firstId],
    ]);
  });

  it("the no-overlap rule is the job's unique key: a job without one is always added", async () => {
    const { store } = fx();
    await setUp(store);
    for (let i = 1; i <= 3; i++) expect((await store.schedules.fire("nightly", S(i), S(i), newJob()))!.outcome).toBe("enqueued");
    expect(await store.jobs.list({})).toHaveLength(3);
  });

  it("a manual run (slot null) is never refused, leaves lastSlot alone and records no slot", async () => {
    const { store } = fx();
    await setUp(store);
    await store.schedules.fire("nightly", S(3), S(3), job());
    const manual = await store.schedules.fire("nightly", null, S(4), job());
    expect(manual).toMatchObject({ outcome: "skipped" });
    await store.jobs.cancelPending(jobId(manual), S(4));
    expect(await store.schedules.fire("nightly", null, S(5), job())).toMatchObject({ outcome: "enqueued" });
    expect(await store.schedules.get("nightly")).toMatchObject({ lastSlot: S(3), lastFiredAt: S(5), lastOutcome: "enqueued" });
    expect((await store.schedules.runs("nightly")).map((r) => r.slot)).toEqual([S(3)]);
  });

  it("runs: latest slot first, at most the limit, only that schedule's", async () => {
    const { store } = fx();
    await setUp(store);
    await store.schedules.upsert(def({ name: "other" }), T0);
    for (let i = 1; i <= 5; i++) await store.schedules.fire("nightly", S(i), S(i), newJob());
    await store.schedules.fire("other", S(9), S(9), newJob());
    expect((await store.schedules.runs("nightly", 3)).map((r) => r.slot)).toEqual([S(5), S(4), S(3)]);
    expect((await store.schedules.runs("other")).map((r) => r.slot)).toEqual([S(9)]);
    expect(await store.schedules.runs("nope")).toEqual([]);
  });

  it("pruneRuns forgets slots fired before the cutoff, and they stay refused", async () => {
    const { store } = fx();
    await setUp(store);
    for (let i = 1; i <= 4; i++) await store.schedules.fire("nightly", S(i), S(i), newJob());
    expect(await store.schedules.pruneRuns(S(3))).toBe(2);
    expect((await store.schedules.runs("nightly")).map((r) => r.slot)).toEqual([S(4), S(3)]);
    expect(await store.schedules.pruneRuns(S(3))).toBe(0);
    expect(await store.schedules.fire("nightly", S(1), S(5), newJob())).toEqual({ outcome: "already-fired" });
    expect(await store.schedules.pruneRuns(S(99))).toBe(2);
    expect(await store.schedules.fire("nightly", S(4), S(99), newJob())).toEqual({ outcome: "already-fired" });
    expect(await store.jobs.list({})).toHaveLength(4);
  });

  it("removing a schedule removes the record of its slots", async () => {
    const { store } = fx();
    await setUp(store);
    await store.schedules.fire("nightly", S(1), S(1), newJob());
    await store.schedules.remove("nightly");
    await setUp(store);
    expect(await store.schedules.runs("nightly")).toEqual([]);
    expect((await store.schedules.fire("nightly", S(1), S(2), newJob()))!.outcome).toBe("enqueued");
  });

  it("two handles firing the same slots at once: each slot is handled by exactly one", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    await setUp(store);
    for (let i = 1; i <= 30; i++) {
      // Each handle cancels what it enqueued, so that most slots enqueue (not skip).
      const results = await Promise.all([store, other].map((s) => s.schedules.fire("nightly", S(i), S(i), job())));
      const won = results.filter((r) => r!.outcome !== "already-fired");
      expect(won, `slot ${i}`).toHaveLength(1);
      if (won[0]!.outcome === "enqueued") await store.jobs.cancelPending(won[0]!.job.id, S(i));
    }
    expect(await other.schedules.runs("nightly")).toHaveLength(30);
    expect((await store.schedules.runs("nightly")).every((r) => r.outcome === "enqueued")).toBe(true);
    expect(await store.jobs.list({ limit: 100 })).toHaveLength(30);
  });
});
