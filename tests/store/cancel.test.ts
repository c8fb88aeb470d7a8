// Conformance: cancel requests (JobStore.requestCancel) on every store, then what only a store
// shared by nodes does (PostgreSQL): the owner's heartbeat carries the request, its session
// hears it at once (NOTIFY tw_control), other daemons' new jobs wake it (NOTIFY tw_jobs,
// debounced, never its own), and the reaper ends a job its live node did not stop by deadline
// + lease, fencing that node's late writes.

import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asNodes, forEachStore, newJob, T0, TEST_LEASE_MS, anyJobs, tickBatch } from "./suite.js";
import { POSTGRES_SKIPPED, postgresFactory, type StoreFixture, rawClient } from "./factory.js";
import { waitFor } from "../helpers/wait.js";
import type { CancelNotice, Finish, Store } from "../../src/store/types.js";

const batch = tickBatch;
const enqueue = async (store: Store, n = 1) => (await store.jobs.tick(batch("E", { inserts: Array.from({ length: n }, () => newJob()) }))).inserted.map((r) => r.job);
const claim = async (store: Store, owner: string, n = 1, now = T0) => (await store.jobs.claim({ ...anyJobs(n), owner, now })).claimed;
const finish = (store: Store, owner: string, f: Finish) => store.jobs.tick(batch(owner, { now: T0 + 10, finishes: [f] }));
const GRACE = 3000;

forEachStore("cancel requests", (fx) => {
  it("a pending job is cancelled at once; an ended one is left as it is; an unknown one is null", async () => {
    const { store } = fx();
    const [job] = await enqueue(store);
    const a = await store.jobs.requestCancel(job!.id, GRACE, T0 + 1);
    expect(a).toMatchObject({ outcome: "cancelled", job: { id: job!.id, status: "cancelled", error: "cancelled by user", attempts: 0 } });
    expect(await store.jobs.requestCancel(job!.id, GRACE, T0 + 2)).toMatchObject({ outcome: "ended", job: { status: "cancelled" } });
    expect(await store.jobs.requestCancel(999_999, GRACE, T0)).toBeNull();
  });

  it("a running job keeps running with the request recorded, for its owner, with a deadline a second request keeps", async () => {
    const { store } = fx();
    await asNodes(store, "A");
    const [job] = await enqueue(store);
    await claim(store, "A");
    const a = await store.jobs.requestCancel(job!.id, GRACE, T0 + 1);
    if (a?.outcome !== "requested") throw new Error(`expected requested, got ${JSON.stringify(a)}`);
    expect(a.owner).toBe("A");
    expect(a.job).toMatchObject({ id: job!.id, status: "running", attempts: 1 });
    const b = await store.jobs.requestCancel(job!.id, 60_000, T0 + 2);
    expect(b).toMatchObject({ outcome: "requested", deadline: a.deadline });
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "running" });
  });

  it("every end of an attempt whose cancel was requested is cancelled: a result is kept, a failure or a requeue does not run it again", async () => {
    const { store } = fx();
    await asNodes(store, "A");
    const jobs = await enqueue(store, 4);
    await claim(store, "A", 4);
    for (const j of jobs) await store.jobs.requestCancel(j.id, GRACE, T0 + 1);
    const [done, failed, requeued, stopped] = jobs.map((j) => j.id) as [number, number, number, number];
    const r1 = await finish(store, "A", { id: done, attempt: 1, outcome: "complete", result: { late: true } });
    expect(r1.finished).toMatchObject([{ id: done, status: "cancelled", result: { late: true } }]);
    await finish(store, "A", { id: failed, attempt: 1, outcome: "retry", error: "boom", runAt: T0 + 5000 });
    await finish(store, "A", { id: requeued, attempt: 1, outcome: "requeue" });
    await finish(store, "A", { id: stopped, attempt: 1, outcome: "cancelled", result: { returned: "anyway" } });
    expect(await store.jobs.get(done)).toMatchObject({ status: "cancelled", result: { late: true }, finishedAt: expect.any(Number) });
    expect(await store.jobs.get(failed)).toMatchObject({ status: "cancelled", errors: [{ attempt: 1, message: "boom" }], finishedAt: expect.any(Number) });
    expect(await store.jobs.get(requeued)).toMatchObject({ status: "cancelled", attempts: 1, finishedAt: expect.any(Number) });
    expect(await store.jobs.get(stopped)).toMatchObject({ status: "cancelled", result: { returned: "anyway" } });
    // Nothing of them is left to claim.
    expect(await claim(store, "A", 4)).toEqual([]);
  });

  it("rescue ends a job whose cancel was requested cancelled, never pending; the others go back as before", async () => {
    const { store } = fx();
    await asNodes(store, "gone");
    const [asked, plain] = await enqueue(store, 2);
    await claim(store, "gone", 2);
    await store.jobs.requestCancel(asked!.id, GRACE, T0 + 1);
    expect(await store.jobs.rescue({ now: T0 + 5, liveOwners: ["me"] })).toEqual({ interrupted: 1, cancelled: 1 });
    expect(await store.jobs.get(asked!.id)).toMatchObject({ status: "cancelled", error: "cancelled by user", finishedAt: expect.any(Number) });
    expect(await store.jobs.get(plain!.id)).toMatchObject({ status: "pending", attempts: 1 });
  });

  it("a retry forgets the request: the next attempt ends as it ends", async () => {
    const { store } = fx();
    await asNodes(store, "A");
    const [job] = await enqueue(store);
    await claim(store, "A");
    await store.jobs.requestCancel(job!.id, GRACE, T0 + 1);
    await finish(store, "A", { id: job!.id, attempt: 1, outcome: "cancelled" });
    expect(await store.jobs.retry(job!.id, T0 + 20)).toMatchObject({ status: "pending" });
    expect(await claim(store, "A", 1, T0 + 20)).toHaveLength(1);
    const r = await finish(store, "A", { id: job!.id, attempt: 2, outcome: "complete", result: 2 });
    expect(r.finished).toMatchObject([{ id: job!.id, status: "complete", result: 2 }]);
  });

  it("the owner's heartbeat carries the request while the job runs (a store one daemon serves carries none: its engine cancels first hand)", async () => {
    const { store } = fx();
    const [session] = await asNodes(store, "A");
    const [job] = await enqueue(store);
    await claim(store, "A");
    expect((await session!.heartbeat(TEST_LEASE_MS)).cancels).toEqual([]);
    await store.jobs.requestCancel(job!.id, GRACE, T0 + 1);
    const beat = await session!.heartbeat(TEST_LEASE_MS);
    if (!store.nodes.shared) {
      expect(beat).toMatchObject({ cancels: [], listening: false });
      return;
    }
    expect(beat.cancels).toEqual([{ id: job!.id, attempt: 1, graceLeftMs: expect.any(Number) }]);
    expect(beat.cancels[0]!.graceLeftMs).toBeGreaterThan(0);
    expect(beat.cancels[0]!.graceLeftMs).toBeLessThanOrEqual(GRACE);
    await finish(store, "A", { id: job!.id, attempt: 1, outcome: "cancelled" });
    expect((await session!.heartbeat(TEST_LEASE_MS)).cancels).toEqual([]);
  });
});

describe.skipIf(POSTGRES_SKIPPED !== null)("cancel requests and wake-ups on a shared store (postgres)", () => {
  let f: StoreFixture;
  let store: Store;
  let raw: pg.Client;

  beforeEach(async () => {
    f = await postgresFactory.create();
    store = f.store;
    raw = await rawClient(f);
  });
  afterEach(async () => {
    await raw.end().catch(() => {});
    await f.cleanup();
  });

  it("the owner's session hears the request at once (NOTIFY tw_control), and only the owner's", async () => {
    const [a, b] = await asNodes(store, "A", "B");
    const heard: { node: string; notice: CancelNotice }[] = [];
    a!.on("cancel", (notice) => heard.push({ node: "A", notice }));
    b!.on("cancel", (notice) => heard.push({ node: "B", notice }));
    const [job] = await enqueue(store);
    await claim(store, "A");
    // Asked through another daemon (another handle on the database).
    const other = await f.openAnother();
    await other.jobs.requestCancel(job!.id, GRACE, T0);
    await waitFor(() => heard.length > 0, { what: "the owner told of the cancel" });
    expect(heard).toEqual([{ node: "A", notice: { id: job!.id, attempt: 1, graceLeftMs: expect.any(Number) } }]);
    expect(heard[0]!.notice.graceLeftMs).toBeGreaterThan(GRACE - 2000);
    // A pending job's cancel tells nobody.
    const [pending] = await enqueue(store);
    await other.jobs.requestCancel(pending!.id, GRACE, T0);
    await other.jobs.requestCancel(job!.id, GRACE, T0); // asked again: told again, same deadline
    await waitFor(() => heard.length > 1, { what: "the second request told" });
    expect(heard.map((h) => h.node)).toEqual(["A", "A"]);
    expect((await a!.heartbeat(TEST_LEASE_MS)).listening).toBe(true);
  });

  it("jobs made claimable through another daemon wake a node's session (NOTIFY tw_jobs), a burst's last enqueue too, never its own", async () => {
    const [a] = await asNodes(store, "A");
    let woken = 0;
    a!.on("jobs", () => woken++);
    // Its own store's enqueue: not heard (its engine knew).
    await enqueue(store);
    const other = await f.openAnother();
    await enqueue(other);
    await waitFor(() => woken === 1, { what: "woken by the other daemon's enqueue" });
    // A burst through the other daemon, all at once: one NOTIFY in flight at a time (the
    // coalescing itself: tests/unit/wakeups.test.ts), and one is sent after the last commit.
    const listener = await rawClient(f);
    let sent = 0;
    listener.on("notification", (n) => n.channel === "tw_jobs" && sent++);
    await listener.query("LISTEN tw_jobs");
    await Promise.all(Array.from({ length: 40 }, () => enqueue(other)));
    // Read as the last commit returned: a notification is still to come, sent after it.
    const atLastCommit = sent;
    await waitFor(() => sent > atLastCommit, { what: "a NOTIFY after the burst's last commit" });
    await listener.end();
    expect(sent).toBeLessThanOrEqual(40);
    // A retry and a rescue wake it too.
    const before = woken;
    await asNodes(store, "gone");
    const [j] = await enqueue(store);
    await claim(store, "gone");
    await store.jobs.requestCancel(j!.id, GRACE, T0);
    await other.jobs.rescue({ now: T0, liveOwners: ["A"] });
    await other.jobs.retry(j!.id, T0);
    await waitFor(() => woken > before, { what: "woken by the retry" });
  });

  it("with notify off the store sends and hears nothing: the heartbeat still carries cancels", async () => {
    const quiet = await f.openAnother({ notify: false });
    const [a] = await asNodes(quiet, "Q");
    let heard = 0;
    a!.on("jobs", () => heard++);
    a!.on("cancel", () => heard++);
    const [job] = await enqueue(store);
    await claim(quiet, "Q");
    await store.jobs.requestCancel(job!.id, GRACE, T0);
    await enqueue(store, 3);
    const beat = await a!.heartbeat(TEST_LEASE_MS);
    expect(beat.listening).toBe(false);
    expect(beat.cancels.map((c) => c.id)).toEqual([job!.id]);
    // Give a stray NOTIFY time to arrive: none does.
    await new Promise((r) => setTimeout(r, 200));
    expect(heard).toBe(0);
  });

  it("the reaper: a live node's job still running lease past its cancel deadline is ended cancelled, and the node's late writes are refused", async () => {
    const [a] = await asNodes(store, "A");
    const [kept, reaped] = await enqueue(store, 2);
    await claim(store, "A", 2);
    await store.jobs.requestCancel(kept!.id, 60_000, T0);
    await store.jobs.requestCancel(reaped!.id, 0, T0);
    // Not before deadline + lease.
    expect(await store.nodes.rescueDead({ now: T0, self: "B", silentMs: 60_000, leaseMs: 60_000 })).toEqual({ nodes: [], interrupted: 0, cancelled: 0 });
    const r = await waitFor(
      async () => {
        const x = await store.nodes.rescueDead({ now: T0, self: "B", silentMs: 60_000, leaseMs: 50 });
        return x.cancelled === 1 ? x : null;
      },
      { what: "the job reaped" },
    );
    expect(r).toEqual({ nodes: [], interrupted: 0, cancelled: 1 });
    expect(await store.jobs.get(reaped!.id)).toMatchObject({ status: "cancelled", error: "cancelled by user" });
    expect((await store.jobs.get(reaped!.id))!.errors.at(-1)!.message).toMatch(/past its cancel deadline/);
    expect(await store.jobs.get(kept!.id)).toMatchObject({ status: "running" });
    // The node was stuck, and now writes: refused, the job stays cancelled.
    const late = await store.jobs.tick(batch("A", { progress: [{ id: reaped!.id, attempt: 1, progress: 50, message: null }], finishes: [{ id: reaped!.id, attempt: 1, outcome: "complete", result: 1 }] }));
    expect(late.refused.map((w) => w.write).sort()).toEqual(["finish", "progress"]);
    expect(await store.jobs.get(reaped!.id)).toMatchObject({ status: "cancelled", result: null });
    // The node itself is alive and keeps its lease.
    expect((await a!.heartbeat(TEST_LEASE_MS)).leaseUntil).not.toBeNull();
    expect(await store.nodes.list()).toHaveLength(1);
  });

  it("a dead node's job whose cancel was requested is ended cancelled by rescue", async () => {
    const [, gone] = await asNodes(store, "live", "gone");
    const [job] = await enqueue(store);
    await claim(store, "gone");
    await store.jobs.requestCancel(job!.id, GRACE, T0);
    gone!.abandon();
    const r = await waitFor(
      async () => {
        const x = await store.nodes.rescueDead({ now: T0, self: "live", silentMs: 0, leaseMs: TEST_LEASE_MS });
        return x.nodes.length === 1 ? x : null;
      },
      { what: "the dead node rescued" },
    );
    expect(r).toEqual({ nodes: ["gone"], interrupted: 0, cancelled: 1 });
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "cancelled" });
  });
});
