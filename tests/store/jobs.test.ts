// The jobs part of the Store, for every store (factory.ts): what the engine relies on, and
// the promises that hold across handles and processes: a job is claimed once, a late write of
// an attempt is refused, a unique key is held by one live job, rescue touches only the jobs
// of owners that are gone.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STORE_FACTORIES, type StoreFixture } from "./factory.js";
import type { ClaimLimits, Finish, JobRecord, NewJob, Store, TickBatch } from "../../src/store/types.js";
import { StoreError } from "../../src/store/errors.js";
import { asNodes, anyJobs, tickBatch } from "./suite.js";
import { STATS_PAGE_ROWS } from "../../src/store/sqlite/jobs.js";

const T0 = Date.parse("2026-06-01T12:00:00Z");
const CLAIM_WORKER = fileURLToPath(new URL("../fixtures/store/claim-worker.mjs", import.meta.url));

const newJob = (over: Partial<NewJob> = {}): NewJob => ({ type: "noop", payload: {}, runAt: T0, priority: 0, maxAttempts: 3, uniqueKey: null, ...over });
/** A batch at this file's T0 (suite.ts's tickBatch is at the suite's). */
const batch = (owner: string, over: Partial<TickBatch> = {}): TickBatch => tickBatch(owner, { now: T0, ...over });

async function enqueue(store: Store, jobs: NewJob[], now = T0): Promise<JobRecord[]> {
  return (await store.jobs.tick(batch("enqueuer", { now, inserts: jobs }))).inserted.map((r) => r.job);
}
const claim = (store: Store, owner: string, limits: ClaimLimits, now = T0) => store.jobs.claim({ ...limits, owner, now });
const finish = (store: Store, owner: string, f: Finish, now = T0) => store.jobs.tick(batch(owner, { now, finishes: [f] }));
const complete = (id: number, attempt: number): Finish => ({ id, attempt, outcome: "complete", result: { ok: true } });

for (const factory of STORE_FACTORIES) {
  describe(`jobs store: ${factory.name}`, () => {
    let f: StoreFixture;
    let store: Store;
    beforeEach(async () => {
      f = await factory.create();
      store = f.store;
      // The owners these tests claim for (P1-P3: the claim worker processes).
      await asNodes(store, "A", "B", "C", "D", "P1", "P2", "P3");
    });
    afterEach(async () => {
      await f.cleanup();
    });

    describe("enqueue, get, list, counts", () => {
      it("stores new jobs as pending, in order, and gives them back as stored", async () => {
        const [a, b] = await enqueue(store, [newJob({ payload: { n: 1 } }), newJob({ type: "mail", payload: { to: "x" }, priority: 5, maxAttempts: 1 })]);
        expect(b!.id).toBeGreaterThan(a!.id);
        expect(await store.jobs.get(a!.id)).toEqual(a);
        expect(await store.jobs.get(b!.id)).toMatchObject({ type: "mail", payload: { to: "x" }, status: "pending", attempts: 0, maxAttempts: 1, priority: 5, slot: null, errors: [], state: null, createdAt: T0 });
        expect(await store.jobs.get(b!.id + 1000)).toBeNull();
      });

      it("lists newest first as summaries, filtered and paged", async () => {
        const jobs = await enqueue(store, [newJob(), newJob({ type: "mail", payload: { body: "x".repeat(5000) } }), newJob()]);
        const all = await store.jobs.list({});
        expect(all.map((j) => j.id)).toEqual(jobs.map((j) => j.id).reverse());
        const mail = await store.jobs.list({ type: "mail" });
        expect(mail).toHaveLength(1);
        expect(mail[0]).toMatchObject({ payloadTruncated: true });
        expect(mail[0]!.payloadBytes).toBeGreaterThan(5000);
        expect(mail[0]).not.toHaveProperty("payload");
        expect((await store.jobs.list({ limit: 1, beforeId: jobs[2]!.id })).map((j) => j.id)).toEqual([jobs[1]!.id]);
        await claim(store, "A", anyJobs(1));
        expect((await store.jobs.list({ status: "running" })).map((j) => j.id)).toEqual([jobs[0]!.id]);
        expect(await store.jobs.counts()).toMatchObject({ pending: 2, running: 1, complete: 0, failed: 0, cancelled: 0 });
      });
    });

    describe("claims", () => {
      it("claims due jobs by priority, then run time, then id; never a future or paused one", async () => {
        const [late, urgent, early, future, paused] = await enqueue(store, [
          newJob({ runAt: T0 - 10 }),
          newJob({ runAt: T0, priority: 9 }),
          newJob({ runAt: T0 - 20 }),
          newJob({ runAt: T0 + 60_000 }),
          newJob({ type: "mail", runAt: T0 - 30 }),
        ]);
        const r = await claim(store, "A", anyJobs(10, { pausedTypes: ["mail"] }));
        expect(r.claimed.map((j) => j.id)).toEqual([urgent!.id, early!.id, late!.id]);
        expect(r.claimed[0]).toMatchObject({ status: "running", attempts: 1, slot: null, startedAt: null });
        // It ran out of due jobs: the next one is due at the future job's time.
        expect(r.nextDueAt).toBe(future!.runAt);
        expect((await store.jobs.get(paused!.id))!.status).toBe("pending");
        expect((await claim(store, "A", anyJobs(10))).claimed.map((j) => j.id)).toEqual([paused!.id]);
      });

      it("a tick's claim comes after its other writes: it sees the jobs the tick enqueued and finished", async () => {
        const [old] = await enqueue(store, [newJob({ priority: 1 })]);
        await claim(store, "A", anyJobs(1));
        const r = await store.jobs.tick(batch("A", { inserts: [newJob(), newJob({ uniqueKey: "k" })], finishes: [complete(old!.id, 1)], claim: anyJobs(5) }));
        expect(r.finished.map((j) => j.id)).toEqual([old!.id]);
        expect(r.claimed.map((j) => j.id)).toEqual(r.inserted.map((i) => i.job.id));
        expect(r.nextDueAt).toBeNull();
      });

      it("a claim whose time budget is spent takes one job still, in order; the next claims take the rest", async () => {
        const jobs = await enqueue(store, [newJob(), newJob(), newJob()]);
        const taken: number[] = [];
        for (let i = 0; i < 3 && taken.length < 3; i++) {
          const r = await store.jobs.tick(batch("A", { claim: anyJobs(3, { budgetMs: 0 }) }));
          expect(r.claimed.length).toBeGreaterThanOrEqual(1);
          // SQLite's claim holds the daemon's thread: it keeps to the budget (PostgreSQL may ignore it).
          if (factory.name === "sqlite") expect(r.claimed).toHaveLength(1);
          taken.push(...r.claimed.map((j) => j.id));
        }
        expect(taken).toEqual(jobs.map((j) => j.id));
      });

      it("says which jobs run for an owner (what a daemon holds in the store's view), and a requeue of one it never received gives it back uncounted", async () => {
        const [a, b, c] = await enqueue(store, [newJob(), newJob(), newJob()]);
        await claim(store, "A", anyJobs(2));
        await claim(store, "B", anyJobs(1));
        expect(await store.jobs.runningFor("A")).toEqual([
          { id: a!.id, attempt: 1 },
          { id: b!.id, attempt: 1 },
        ]);
        expect(await store.jobs.runningFor("B")).toEqual([{ id: c!.id, attempt: 1 }]);
        expect(await store.jobs.runningFor("C")).toEqual([]);
        // A's answer was lost: it gives b back, and b is pending with its attempt not counted.
        await finish(store, "A", { id: b!.id, attempt: 1, outcome: "requeue" });
        expect(await store.jobs.runningFor("A")).toEqual([{ id: a!.id, attempt: 1 }]);
        expect(await store.jobs.get(b!.id)).toMatchObject({ status: "pending", attempts: 0 });
        await finish(store, "A", complete(a!.id, 1));
        expect(await store.jobs.runningFor("A")).toEqual([]);
      });

      it("claims more due jobs than one page of the claim holds, in order, each once", async () => {
        const jobs = await enqueue(store, Array.from({ length: 75 }, (_, i) => newJob({ priority: i % 3, runAt: T0 - i })));
        const order = [...jobs].sort((a, b) => b.priority - a.priority || a.runAt - b.runAt || a.id - b.id).map((j) => j.id);
        // In pages (a tick's claim with a time budget), then all at once (no budget).
        const first = await store.jobs.tick(batch("A", { claim: anyJobs(40, { budgetMs: 60_000 }) }));
        const rest = await claim(store, "B", anyJobs(100));
        expect([...first.claimed, ...rest.claimed].map((j) => j.id)).toEqual(order);
        expect(first.claimed).toHaveLength(40);
        expect(rest.claimed.every((j) => j.status === "running" && j.attempts === 1 && j.slot === null && j.startedAt === null)).toBe(true);
        expect(rest.nextDueAt).toBeNull();
        expect(await store.jobs.counts()).toMatchObject({ pending: 0, running: 75 });
      });

      it("says when the next job is due even when none is due now", async () => {
        await enqueue(store, [newJob({ runAt: T0 + 5000 }), newJob({ runAt: T0 + 2000, priority: -1 })]);
        expect(await claim(store, "A", anyJobs(10))).toEqual({ claimed: [], nextDueAt: T0 + 2000 });
        expect(await claim(store, "A", anyJobs(10), T0 + 2000)).toMatchObject({ claimed: [{ runAt: T0 + 2000 }] });
      });

      it("takes jobs within the budgets their types draw on, and stops at the first that does not fit", async () => {
        const jobs = await enqueue(store, ["fast", "fast", "slow", "fast", "slow", "other"].map((type) => newJob({ type })));
        const limits: ClaimLimits = { limit: 10, pausedTypes: [], budgets: { slots: 1, behind: 5, unknown: 1 }, draws: { fast: ["behind"], slow: ["slots"] }, otherTypes: ["slots", "unknown"] };
        const r = await claim(store, "A", limits);
        // fast, fast, slow (the one slot), fast; the second slow finds no slot: the claim stops
        // there, so nothing behind it (not even "other") overtakes it.
        expect(r.claimed.map((j) => j.id)).toEqual([0, 1, 2, 3].map((i) => jobs[i]!.id));
        expect(r.nextDueAt).toBeNull();
        // A budget that is not given is none; the limit bounds everything.
        expect((await claim(store, "A", { ...limits, budgets: {} })).claimed).toEqual([]);
        expect((await claim(store, "A", { ...anyJobs(1) })).claimed.map((j) => j.id)).toEqual([jobs[4]!.id]);
      });

      it("records the owner and the attempt: the begin writes where and when its turn came", async () => {
        const [job] = await enqueue(store, [newJob()]);
        const [c] = (await claim(store, "A", anyJobs(1))).claimed;
        const r = await store.jobs.tick(batch("A", { now: T0 + 5, begins: [{ id: job!.id, attempt: c!.attempts, at: T0 + 3, slot: 2 }] }));
        expect(r.refused).toEqual([]);
        expect(await store.jobs.get(job!.id)).toMatchObject({ status: "running", attempts: 1, slot: 2, startedAt: T0 + 3 });
        const done = await finish(store, "A", complete(job!.id, 1), T0 + 9);
        expect(done.finished).toMatchObject([{ id: job!.id, status: "complete", result: { ok: true }, progress: 100, slot: null, startedAt: T0 + 3, finishedAt: T0 + 9 }]);
      });

      it("never gives one job to two handles that claim at once", async () => {
        const other = await f.openAnother();
        const jobs = await enqueue(store, Array.from({ length: 60 }, () => newJob()));
        const claimAll = async (s: Store, owner: string) => {
          const ids: number[] = [];
          for (;;) {
            const { claimed } = await claim(s, owner, anyJobs(3));
            if (claimed.length === 0) return ids;
            ids.push(...claimed.map((j) => j.id));
            await new Promise((r) => setImmediate(r)); // let the other handle in between
          }
        };
        const [a, b] = await Promise.all([claimAll(store, "A"), claimAll(other, "B")]);
        expect(a.length).toBeGreaterThan(0);
        expect(b.length).toBeGreaterThan(0);
        expect([...a, ...b].sort((x, y) => x - y)).toEqual(jobs.map((j) => j.id));
      });

      it("never gives one job to two processes racing for claims", { timeout: 60_000 }, async () => {
        const N = 3000;
        const jobs = await enqueue(store, Array.from({ length: N }, () => newJob()));
        const workers = ["P1", "P2", "P3"].map((owner) => startClaimWorker(JSON.stringify(f.location), owner, 2));
        await Promise.all(workers.map((w) => w.ready));
        const startAt = Date.now() + 200;
        for (const w of workers) w.go(startAt);
        const results = await Promise.all(workers.map((w) => w.done));
        console.log(results.map((r) => `${r.claimed.length} claimed, ${r.busy} busy`).join("; "));
        const claimed = results.flatMap((r) => r.claimed).sort((x, y) => x - y);
        expect(claimed).toEqual(jobs.map((j) => j.id));
        expect(results.flatMap((r) => r.finished).sort((x, y) => x - y)).toEqual(claimed);
        expect(results.map((r) => r.refused)).toEqual([0, 0, 0]);
        // They raced: more than one process claimed work. (Not "every one": SQLite's busy
        // wait is not fair, and a process can lose every round to the other two; CI saw it.)
        expect(results.filter((r) => r.claimed.length > 0).length).toBeGreaterThanOrEqual(2);
        const done = await store.jobs.list({ status: "complete", limit: N });
        expect(done).toHaveLength(N);
        expect(done.every((j) => j.attempts === 1)).toBe(true);
      });
    });

    describe("fencing", () => {
      it("refuses every write of an attempt that is no longer the running one", async () => {
        const [job] = await enqueue(store, [newJob()]);
        await claim(store, "A", anyJobs(1));
        // A daemon run B takes over: A is gone as far as B knows; the job runs again for B.
        const b = await f.openAnother();
        expect(await b.jobs.rescue({ now: T0 + 1, liveOwners: ["B"] })).toEqual({ interrupted: 1, cancelled: 0 });
        const [again] = (await claim(b, "B", anyJobs(1), T0 + 2)).claimed;
        expect(again).toMatchObject({ id: job!.id, attempts: 2 });

        // A's late writes of attempt 1, all in one batch: every one refused, none applied.
        const late = await store.jobs.tick(
          batch("A", {
            now: T0 + 3,
            progress: [{ id: job!.id, attempt: 1, progress: 50, message: "late" }],
            checkpoints: [{ id: job!.id, attempt: 1, state: { late: true } }],
            logs: [{ id: job!.id, attempt: 1, at: T0 + 3, message: "late line" }],
            begins: [{ id: job!.id, attempt: 1, at: T0 + 3, slot: 1 }],
            finishes: [complete(job!.id, 1)],
          }),
        );
        expect(late.finished).toEqual([]);
        expect(late.refused.map((r) => r.write).sort()).toEqual(["begin", "checkpoint", "finish", "log", "progress"]);
        expect(late.refused.every((r) => r.id === job!.id && r.attempt === 1)).toBe(true);
        expect(await store.jobs.get(job!.id)).toMatchObject({ status: "running", attempts: 2, progress: 0, progressMessage: null, state: null, startedAt: null });
        expect(await store.jobs.logs(job!.id, 0)).toEqual([]);

        // Even naming the current attempt, A is not its owner.
        expect((await finish(store, "A", complete(job!.id, 2))).refused).toEqual([{ write: "finish", id: job!.id, attempt: 2 }]);
        // B's own writes apply.
        const mine = await b.jobs.tick(batch("B", { now: T0 + 4, progress: [{ id: job!.id, attempt: 2, progress: 70, message: "mine" }], logs: [{ id: job!.id, attempt: 2, at: T0 + 4, message: "my line" }] }));
        expect(mine.refused).toEqual([]);
        expect((await store.jobs.logs(job!.id, 0)).map((l) => [l.attempt, l.message])).toEqual([[2, "my line"]]);
        expect((await finish(b, "B", complete(job!.id, 2), T0 + 5)).finished).toMatchObject([{ id: job!.id, status: "complete", attempts: 2 }]);
      });

      it("fences on the owner when the attempt number comes round again (a requeued attempt)", async () => {
        const [job] = await enqueue(store, [newJob()]);
        await claim(store, "A", anyJobs(1));
        // A hands it back uncounted (shutdown); B claims it: attempt 1 again, for B.
        expect((await finish(store, "A", { id: job!.id, attempt: 1, outcome: "requeue" })).finished).toMatchObject([{ status: "pending", attempts: 0 }]);
        const b = await f.openAnother();
        expect((await claim(b, "B", anyJobs(1))).claimed).toMatchObject([{ id: job!.id, attempts: 1 }]);
        const late = await finish(store, "A", { id: job!.id, attempt: 1, outcome: "failed", error: "late", permanent: true });
        expect(late.refused).toEqual([{ write: "finish", id: job!.id, attempt: 1 }]);
        expect(await store.jobs.get(job!.id)).toMatchObject({ status: "running", error: null });
      });

      it("applies each finish once: a second finish of the same attempt is refused", async () => {
        const [job] = await enqueue(store, [newJob()]);
        await claim(store, "A", anyJobs(1));
        const first = await finish(store, "A", { id: job!.id, attempt: 1, outcome: "retry", error: "boom", runAt: T0 + 1000 });
        expect(first.finished).toMatchObject([{ status: "pending", runAt: T0 + 1000, errors: [{ attempt: 1, message: "boom" }] }]);
        expect((await finish(store, "A", complete(job!.id, 1))).refused).toHaveLength(1);
      });
    });

    describe("an attempt's own writes", () => {
      it("stores progress, keeps the checkpoint across attempts, and bounds the log to the newest lines", async () => {
        const [job] = await enqueue(store, [newJob()]);
        await claim(store, "A", anyJobs(1));
        const lines = Array.from({ length: 230 }, (_, i) => ({ id: job!.id, attempt: 1, at: T0 + i, message: `line ${i + 1}` }));
        const r = await store.jobs.tick(
          batch("A", {
            progress: [{ id: job!.id, attempt: 1, progress: 40, message: "two of five" }],
            checkpoints: [{ id: job!.id, attempt: 1, state: { done: ["a", "b"] } }],
            logs: lines,
          }),
        );
        expect(r.refused).toEqual([]);
        expect(await store.jobs.get(job!.id)).toMatchObject({ progress: 40, progressMessage: "two of five", state: { done: ["a", "b"] } });
        const kept = await store.jobs.logs(job!.id, 0);
        expect(kept).toHaveLength(200);
        expect([kept[0]!.message, kept.at(-1)!.message]).toEqual(["line 31", "line 230"]);
        expect(await store.jobs.logs(job!.id, kept.at(-2)!.id)).toMatchObject([{ message: "line 230" }]);
        // The next attempt starts from the checkpoint, with fresh progress.
        await finish(store, "A", { id: job!.id, attempt: 1, outcome: "retry", error: "boom", runAt: T0 });
        expect((await claim(store, "A", anyJobs(1))).claimed).toMatchObject([{ id: job!.id, attempts: 2, progress: 0, progressMessage: null, state: { done: ["a", "b"] } }]);
      });
    });

    describe("unique keys", () => {
      it("keeps one live job per key: a second enqueue gets the live one", async () => {
        const [a] = await enqueue(store, [newJob({ uniqueKey: "k" })]);
        const r = await store.jobs.tick(batch("E", { inserts: [newJob({ uniqueKey: "k", payload: { other: true } }), newJob({ uniqueKey: "k2" })] }));
        expect(r.inserted.map((i) => [i.job.id === a!.id, i.created])).toEqual([
          [true, false],
          [false, true],
        ]);
        // Still live while running; free again once it finished.
        await claim(store, "A", anyJobs(1));
        expect((await store.jobs.tick(batch("E", { inserts: [newJob({ uniqueKey: "k" })] }))).inserted[0]!.created).toBe(false);
        await finish(store, "A", complete(a!.id, 1));
        expect((await store.jobs.tick(batch("E", { inserts: [newJob({ uniqueKey: "k" })] }))).inserted[0]).toMatchObject({ created: true, job: { status: "pending" } });
      });

      it("creates one job when two handles enqueue the same key at once", async () => {
        const handles = [store, await f.openAnother(), await f.openAnother()];
        const results = await Promise.all(
          handles.flatMap((h, i) => Array.from({ length: 5 }, (_, n) => h.jobs.tick(batch(`E${i}`, { inserts: [newJob({ uniqueKey: "once", payload: { i, n } })] })))),
        );
        const inserted = results.map((r) => r.inserted[0]!);
        expect(inserted.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(inserted.map((r) => r.job.id)).size).toBe(1);
        expect(await store.jobs.counts()).toMatchObject({ pending: 1 });
      });

      it("refuses to retry a job whose key another live job holds", async () => {
        const [a] = await enqueue(store, [newJob({ uniqueKey: "k" })]);
        await claim(store, "A", anyJobs(1));
        await finish(store, "A", { id: a!.id, attempt: 1, outcome: "failed", error: "boom", permanent: true });
        await enqueue(store, [newJob({ uniqueKey: "k" })]);
        await expect(store.jobs.retry(a!.id, T0)).rejects.toMatchObject({ code: "conflict" });
      });
    });

    describe("rescue", () => {
      it("puts back only the running jobs whose owner is not live, counting their attempt", async () => {
        const [a, b, c, pending] = await enqueue(store, [newJob(), newJob({ maxAttempts: 1 }), newJob(), newJob({ runAt: T0 + 60_000 })]);
        await claim(store, "A", anyJobs(1));
        await claim(store, "B", anyJobs(1));
        await claim(store, "C", anyJobs(1));
        // B's job had begun; C's was handed over and had not written its begin.
        await store.jobs.tick(batch("B", { begins: [{ id: b!.id, attempt: 1, at: T0, slot: 1 }] }));

        expect(await store.jobs.rescue({ now: T0 + 10, liveOwners: ["A"] })).toEqual({ interrupted: 2, cancelled: 0 });
        expect(await store.jobs.get(a!.id)).toMatchObject({ status: "running", attempts: 1 });
        expect(await store.jobs.get(b!.id)).toMatchObject({
          status: "pending",
          attempts: 1,
          // Its one attempt is spent: it gets one more, so an interruption never fails a job.
          maxAttempts: 2,
          slot: null,
          errors: [{ attempt: 1, message: "interrupted: the daemon stopped while this attempt was running", permanent: false, at: T0 + 10 }],
        });
        expect((await store.jobs.get(c!.id))!.errors.map((e) => e.message)).toEqual(["interrupted: the daemon stopped while this attempt was handed to its worker (it may have begun)"]);
        expect((await store.jobs.get(pending!.id))!.status).toBe("pending");
        // B's late finish is refused; the rescued jobs can be claimed again.
        expect((await finish(store, "B", complete(b!.id, 1))).refused).toHaveLength(1);
        expect((await claim(store, "D", anyJobs(5), T0 + 20)).claimed.map((j) => [j.id, j.attempts])).toEqual([
          [b!.id, 2],
          [c!.id, 2],
        ]);
        expect(await store.jobs.rescue({ now: T0 + 30, liveOwners: ["A", "D"] })).toEqual({ interrupted: 0, cancelled: 0 });
      });
    });

    describe("admin writes", () => {
      it("cancels pending jobs only, and retries failed or cancelled ones with a fresh count of crashes", async () => {
        const [p, r] = await enqueue(store, [newJob({ runAt: T0 + 1000 }), newJob()]);
        expect(await store.jobs.cancelPending(p!.id, T0 + 1)).toMatchObject({ status: "cancelled", error: "cancelled by user", finishedAt: T0 + 1 });
        expect(await store.jobs.cancelPending(p!.id, T0 + 2)).toBeNull();
        await claim(store, "A", anyJobs(1));
        expect(await store.jobs.cancelPending(r!.id, T0)).toBeNull();
        await finish(store, "A", { id: r!.id, attempt: 1, outcome: "failed", error: "quarantined: ...", permanent: true, crashed: true });
        expect(await store.jobs.retry(r!.id, T0 + 5)).toMatchObject({ status: "pending", runAt: T0 + 5, error: null, finishedAt: null, maxAttempts: 3, errors: [{ crashed: false }] });
        expect(await store.jobs.retry(r!.id, T0 + 5)).toBeNull();
      });

      it("gives per-type figures over the jobs finished since a time, and the queue now", async () => {
        const [a1, a2, a3, b] = await enqueue(store, [newJob({ type: "a" }), newJob({ type: "a" }), newJob({ type: "a" }), newJob({ type: "b" }), newJob({ type: "a", runAt: T0 + 60_000 })]);
        await store.jobs.cancelPending(b!.id, T0 + 5);
        await claim(store, "A", anyJobs(3));
        await store.jobs.tick(batch("A", { now: T0 + 30, begins: [{ id: a1!.id, attempt: 1, at: T0 + 10, slot: 0 }, { id: a2!.id, attempt: 1, at: T0 + 20, slot: 1 }] }));
        await finish(store, "A", complete(a1!.id, 1), T0 + 110);
        await finish(store, "A", { id: a2!.id, attempt: 1, outcome: "failed", error: "boom", permanent: true }, T0 + 50);
        await finish(store, "A", { id: a3!.id, attempt: 1, outcome: "retry", error: "boom", runAt: T0 }, T0 + 15);
        expect((await claim(store, "A", anyJobs(1), T0 + 25)).claimed).toMatchObject([{ id: a3!.id, attempts: 2 }]);
        await store.jobs.tick(batch("A", { now: T0 + 30, begins: [{ id: a3!.id, attempt: 2, at: T0 + 30, slot: 0 }] }));
        await finish(store, "A", complete(a3!.id, 2), T0 + 330);
        expect(await store.jobs.stats(T0, T0 + 1000)).toEqual({
          types: [
            { type: "a", finished: 3, complete: 2, failed: 1, cancelled: 0, retried: 1, runMs: { mean: 200, p95: 300 }, startLatencyMs: { p50: 20, p95: 30, p99: 30 } },
            { type: "b", finished: 1, complete: 0, failed: 0, cancelled: 1, retried: 0, runMs: { mean: null, p95: null }, startLatencyMs: { p50: null, p95: null, p99: null } },
          ],
          pending: 1,
          due: 0,
          running: 0,
        });
        expect((await store.jobs.stats(T0 + 200, T0 + 1000)).types.map((t) => [t.type, t.finished])).toEqual([["a", 1]]);
      });

      it("gives the same figures over more finished jobs than SQLite's stats reads at a time, ends at the same ms across two pages", async () => {
        const n = STATS_PAGE_ROWS + 100;
        const jobs = await enqueue(store, Array.from({ length: n }, () => newJob()));
        await claim(store, "A", anyJobs(n));
        // Two ticks: the first 1,500 end at T0 + 100, the rest at T0 + 200 (a page ends among these).
        const end = (from: number, to: number, at: number) =>
          store.jobs.tick(
            batch("A", {
              now: at,
              begins: jobs.slice(from, to).map((j, i) => ({ id: j.id, attempt: 1, at: T0 + (i % 10), slot: 0 })),
              finishes: jobs.slice(from, to).map((j) => complete(j.id, 1)),
            }),
          );
        await end(0, 1500, T0 + 100);
        await end(1500, n, T0 + 200);
        const [noop] = (await store.jobs.stats(T0, T0 + 1000)).types;
        // Run times: 1,500 of 91-100 ms, 600 of 191-200 ms; latencies 0-9 ms, 10 of each in turn.
        expect(noop).toEqual({ type: "noop", finished: n, complete: n, failed: 0, cancelled: 0, retried: 0, runMs: { mean: expect.any(Number), p95: 199 }, startLatencyMs: { p50: 5, p95: 9, p99: 9 } });
        expect(noop!.runMs.mean).toBeCloseTo((1500 * 95.5 + 600 * 195.5) / n, 0);
      });

      it("counts the due jobs ahead of one, paused types left out", async () => {
        const [a, , , d] = await enqueue(store, [newJob({ priority: 1 }), newJob({ type: "mail" }), newJob(), newJob()]);
        expect(await store.jobs.countAhead(d!, T0, [])).toBe(3);
        expect(await store.jobs.countAhead(d!, T0, ["mail"])).toBe(2);
        expect(await store.jobs.countAhead(a!, T0, [])).toBe(0);
      });
    });

    describe("pruning", () => {
      it("deletes finished jobs that finished before the cutoff, with their logs; never a live one", async () => {
        const jobs = await enqueue(store, [newJob(), newJob(), newJob(), newJob()]);
        const [old, recent, running] = (await claim(store, "A", anyJobs(3))).claimed;
        await store.jobs.tick(batch("A", { logs: [{ id: old!.id, attempt: 1, at: T0, message: "a line" }] }));
        await finish(store, "A", complete(old!.id, 1), T0 + 100);
        await finish(store, "A", { id: recent!.id, attempt: 1, outcome: "cancelled" }, T0 + 300);
        expect(await store.jobs.prune(T0 + 200)).toBe(1);
        expect(await store.jobs.get(old!.id)).toBeNull();
        expect(await store.jobs.logs(old!.id, 0)).toEqual([]);
        expect((await store.jobs.get(recent!.id))!.status).toBe("cancelled");
        expect((await store.jobs.get(running!.id))!.status).toBe("running");
        expect((await store.jobs.get(jobs[3]!.id))!.status).toBe("pending");
        expect(await store.jobs.prune(T0 + 10_000)).toBe(1);
      });
    });

    it("fails with a StoreError, not the driver's, on a closed handle", async () => {
      const other = await f.openAnother();
      await other.close();
      const err = await other.jobs.get(1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).kind).toBe("unavailable");
    });
  });
}

/** A claim-worker.mjs process: ready once its store is open, done with what it claimed. */
function startClaimWorker(location: string, owner: string, batchSize: number) {
  const child = spawn(process.execPath, [CLAIM_WORKER, location, owner, String(batchSize)], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const out: string[] = [];
  let onReady: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  lines.on("line", (l) => (l === "ready" ? onReady() : out.push(l)));
  const done = new Promise<{ claimed: number[]; finished: number[]; refused: number; busy: number }>((resolve, reject) => {
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`claim worker ${owner} exited with ${code}: ${stderr}`));
      resolve(JSON.parse(out.at(-1)!) as { claimed: number[]; finished: number[]; refused: number; busy: number });
    });
  });
  return { ready, done, go: (at: number) => child.stdin.write(`go ${at}\n`) };
}
