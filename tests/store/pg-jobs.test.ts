// What only the PostgreSQL job queue has to say (the shared promises are in jobs.test.ts): a
// claim steps over a job another connection holds instead of waiting for it; a late write of
// an attempt waiting behind a rescue's row lock is re-checked once it gets the row, and
// refused, and a rescue behind a finish leaves the job finished; text PostgreSQL cannot hold
// (U+0000) never wedges a tick of a running attempt; a claim alone is committed without
// waiting for its flush (jobs.ts CLAIM_UNFLUSHED says why that is safe).

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import { POSTGRES_SKIPPED, postgresFactory, type StoreFixture, rawClient } from "./factory.js";
import { asNodes, newJob, T0, anyJobs, tickBatch } from "./suite.js";
import type { Store } from "../../src/store/types.js";
import { CLAIM_RETRY_MS } from "../../src/store/postgres/jobs.js";

const batch = tickBatch;

/** Resolves once some connection waits for a row lock (a transactionid or tuple lock not granted). */
async function someoneWaits(c: pg.Client): Promise<void> {
  for (;;) {
    const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype IN ('transactionid', 'tuple')`);
    if (r.rows[0]!.n > 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres: the job queue's own behaviour", () => {
  let f: StoreFixture;
  let store: Store;
  let raw: pg.Client;
  beforeEach(async () => {
    f = await postgresFactory.create();
    store = f.store;
    await asNodes(store, "A", "X");
    raw = await rawClient(f);
  });
  afterEach(async () => {
    await raw.end().catch(() => {});
    await f.cleanup();
  });

  it("a claim steps over a due job another connection holds locked, without waiting; nextDueAt says to look again", async () => {
    const jobs = (await store.jobs.tick(batch("E", { inserts: [newJob(), newJob(), newJob()] }))).inserted.map((i) => i.job);
    await raw.query("BEGIN");
    await raw.query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", [jobs[0]!.id]);
    const r = await store.jobs.claim({ ...anyJobs(5), owner: "A", now: T0 });
    expect(r.claimed.map((j) => j.id)).toEqual([jobs[1]!.id, jobs[2]!.id]);
    // The held job is still pending and due: "now", not null nor later.
    expect(r.nextDueAt).toBe(T0);
    await raw.query("ROLLBACK");
    expect((await store.jobs.claim({ ...anyJobs(5), owner: "A", now: T0 })).claimed.map((j) => j.id)).toEqual([jobs[0]!.id]);
  });

  it("a late finish that waited behind a rescue's row lock is re-checked when it gets the row, and refused", async () => {
    const [job] = (await store.jobs.tick(batch("E", { inserts: [newJob()] }))).inserted.map((i) => i.job);
    await store.jobs.claim({ ...anyJobs(1), owner: "A", now: T0 });
    // Another daemon's rescue of A's job, not committed yet: it holds the row.
    await raw.query("BEGIN");
    await raw.query(`UPDATE jobs SET status = 'pending', owner = NULL WHERE id = $1`, [job!.id]);
    const late = store.jobs.tick(batch("A", { finishes: [{ id: job!.id, attempt: 1, outcome: "complete", result: { late: true } }] }));
    await someoneWaits(raw);
    await raw.query("COMMIT");
    expect((await late).refused).toEqual([{ write: "finish", id: job!.id, attempt: 1 }]);
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "pending", result: null });
  });

  it("a rescue that waited behind a finish's row lock leaves the finished job alone", async () => {
    const [job] = (await store.jobs.tick(batch("E", { inserts: [newJob()] }))).inserted.map((i) => i.job);
    await store.jobs.claim({ ...anyJobs(1), owner: "A", now: T0 });
    // A's finish, not committed yet: it holds the row.
    await raw.query("BEGIN");
    await raw.query(`UPDATE jobs SET status = 'complete', owner = NULL, finished_at = now() WHERE id = $1`, [job!.id]);
    const rescue = store.jobs.rescue({ now: T0 + 1, liveOwners: ["B"] });
    await someoneWaits(raw);
    await raw.query("COMMIT");
    expect(await rescue).toEqual({ interrupted: 0, cancelled: 0 });
    expect(await store.jobs.get(job!.id)).toMatchObject({ status: "complete", errors: [] });
  });

  it("U+0000 in what a running attempt writes is kept as U+FFFD; in a payload it is kept as is", async () => {
    const [job] = (await store.jobs.tick(batch("E", { inserts: [newJob({ payload: { s: "a\0b" } })] }))).inserted.map((i) => i.job);
    const [c] = (await store.jobs.claim({ ...anyJobs(1), owner: "A", now: T0 })).claimed;
    expect(c!.payload).toEqual({ s: "a\0b" });
    const r = await store.jobs.tick(
      batch("A", {
        progress: [{ id: job!.id, attempt: 1, progress: 10, message: "p\0" }],
        logs: [{ id: job!.id, attempt: 1, at: T0, message: "l\0" }],
        checkpoints: [{ id: job!.id, attempt: 1, state: { s: "c\0" } }],
        finishes: [{ id: job!.id, attempt: 1, outcome: "retry", error: "e\0", runAt: T0 }],
      }),
    );
    expect(r.refused).toEqual([]);
    expect(r.finished).toMatchObject([{ status: "pending", error: "e\uFFFD", progressMessage: "p\uFFFD", state: { s: "c\0" }, errors: [{ message: "e\uFFFD" }] }]);
    expect((await store.jobs.logs(job!.id, 0)).map((l) => l.message)).toEqual(["l\uFFFD"]);
  });

  it("U+0000 in a unique key is refused invalid, and nothing of the tick is written", async () => {
    const err = await store.jobs.tick(batch("E", { inserts: [newJob(), newJob({ uniqueKey: "k\0" })] })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "TeamworkError", code: "invalid_input" });
    expect(await store.jobs.counts()).toMatchObject({ pending: 0 });
  });

  it("a claim alone commits without waiting for its flush; a tick's claim with other writes keeps the store's durability", async () => {
    // What synchronous_commit each commit that changes a job ran with: read by a trigger
    // deferred to the commit, after every statement of the transaction.
    await raw.query(`CREATE TABLE commit_probe (job bigint, status text, sync text)`);
    await raw.query(`CREATE FUNCTION commit_probe() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO commit_probe VALUES (NEW.id, NEW.status, current_setting('synchronous_commit')); RETURN NULL; END $$`);
    await raw.query(`CREATE CONSTRAINT TRIGGER commit_probe AFTER UPDATE ON jobs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_probe()`);
    const full = await f.openAnother({ durability: "full" });
    await asNodes(full, "F");
    const [a, b] = (await full.jobs.tick(batch("E", { inserts: [newJob(), newJob()] }))).inserted.map((i) => i.job);
    // Claims alone: through claim(), and as a tick with nothing else to write.
    expect((await full.jobs.claim({ ...anyJobs(1), owner: "F", now: T0 })).claimed.map((j) => j.id)).toEqual([a!.id]);
    // A tick that ends a job and claims: one commit, the end's, flushed.
    const ended = await full.jobs.tick(batch("F", { finishes: [{ id: a!.id, attempt: 1, outcome: "complete", result: null }], claim: anyJobs(1) }));
    expect(ended.claimed.map((j) => j.id)).toEqual([b!.id]);
    const [c] = (await full.jobs.tick(batch("E", { inserts: [newJob()] }))).inserted.map((i) => i.job);
    expect((await full.jobs.tick(batch("F", { claim: anyJobs(1) }))).claimed.map((j) => j.id)).toEqual([c!.id]);
    // A tick that stores a new job and claims: the insert commits (flushed) first, then the
    // claim goes alone (claimAfterInserts) and takes the job just stored.
    const both = await full.jobs.tick(batch("F", { inserts: [newJob()], claim: anyJobs(1) }));
    const [d] = both.inserted.map((i) => i.job);
    expect(both.claimed.map((j) => j.id)).toEqual([d!.id]);
    const probes = (await raw.query<{ job: number; status: string; sync: string }>(`SELECT job::int AS job, status, sync FROM commit_probe ORDER BY ctid`)).rows;
    expect(probes).toEqual([
      { job: a!.id, status: "running", sync: "off" },
      { job: a!.id, status: "complete", sync: "on" },
      { job: b!.id, status: "running", sync: "on" },
      { job: c!.id, status: "running", sync: "off" },
      { job: d!.id, status: "running", sync: "off" },
    ]);
  });

  it("a claim that fails after its tick's new jobs committed: the jobs are stored and answered, nothing is claimed, the claim is due again", async () => {
    await asNodes(store, "F");
    // A budget the claim cannot read: jobs_claim fails on it, in the claim's own statement.
    const r = await store.jobs.tick(batch("F", { inserts: [newJob(), newJob()], claim: anyJobs(2, { budgets: { any: "many" } as never }) }));
    expect(r.inserted.map((i) => i.created)).toEqual([true, true]);
    expect(r.claimed).toEqual([]);
    expect(r.claimError?.message).toMatch(/double precision/);
    expect(r.nextDueAt).toBe(T0 + CLAIM_RETRY_MS);
    for (const { job } of r.inserted) expect(await store.jobs.get(job.id)).toMatchObject({ status: "pending", attempts: 0 });
    // The next claim takes them.
    expect((await store.jobs.claim({ ...anyJobs(2), owner: "F", now: T0 })).claimed).toHaveLength(2);
  });

  it("the claim walks the due index in claim order on a database never analyzed, whatever the backlog", async () => {
    // 5,000 due jobs on a fresh table (no statistics): the locking read must stop at the
    // limit, not read and sort every due row. Buffers touched say which it did.
    await store.jobs.tick(batch("E", { inserts: Array.from({ length: 5000 }, (_, i) => newJob({ priority: i % 3 })) }));
    const analyzed = await raw.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_user_tables WHERE relname = 'jobs' AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)`);
    expect(analyzed.rows[0]!.n).toBe(0);
    await raw.query("LOAD 'auto_explain'");
    await raw.query("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; SET client_min_messages = log");
    const notices: string[] = [];
    raw.on("notice", (n) => notices.push(n.message ?? ""));
    await raw.query("BEGIN");
    const got = await raw.query<{ id: number | null; priority: number }>(`SELECT * FROM jobs_claim('X', $1, 10, '{}', '{"any": 10}', '{}', '["any"]')`, [new Date(T0)]);
    await raw.query("ROLLBACK");
    expect(got.rows.map((r) => r.priority)).toEqual(Array(10).fill(2));
    const plan = notices.find((n) => n.includes("FOR UPDATE SKIP LOCKED")) ?? "";
    expect(plan).toMatch(/Index Scan using jobs_due/);
    expect(plan).not.toMatch(/Sort/);
  });
});
