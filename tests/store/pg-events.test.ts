// Job events on PostgreSQL (Store.events): what the triggers of migration 005 record, and the
// reader's promise: a reader carrying on from `next` misses no event and gets none twice,
// whatever commits late (SCALE-OUT.md §10 scenario 16, with an `id > cursor` reader as the
// negative control), and a job's events keep their order even when the transaction that
// claims it took its id before the job was enqueued. Events are recorded only while some
// process watches (migration 008): nothing is written otherwise, and a resume across such a
// spell is told to reset. SQLite has no store events (null).

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import { POSTGRES_SKIPPED, postgresFactory, sqliteFactory, type StoreFixture, rawClient } from "./factory.js";
import { asNodes, newJob, T0, anyJobs, tickBatch } from "./suite.js";
import type { EventCursor, JobEventStore, Store, StoredJobEvent } from "../../src/store/types.js";
import { waitFor } from "../helpers/wait.js";

const batch = tickBatch;

/** Every event after `from`, page by page, until a page comes back short. */
async function readAll(events: JobEventStore, from: EventCursor, jobId?: number, pageSize = 7): Promise<{ events: StoredJobEvent[]; next: EventCursor }> {
  const out: StoredJobEvent[] = [];
  let at = from;
  for (;;) {
    const page = await events.read(at, pageSize, jobId);
    if ("reset" in page) throw new Error(`reset: ${page.reset}`);
    out.push(...page.events);
    at = page.next;
    if (page.events.length < pageSize) return { events: out, next: at };
  }
}

const summary = (e: StoredJobEvent) =>
  e.kind === "status" ? `${e.jobId} status ${e.job.status}/${e.job.attempts}/${e.job.slot}` : e.kind === "progress" ? `${e.jobId} progress ${e.progress} ${e.message}` : `${e.jobId} log ${e.line.message}`;

describe("sqlite: store events", () => {
  it("has none: the daemon's bus is the source of its streams", async () => {
    const f = await sqliteFactory.create();
    try {
      expect(f.store.events).toBeNull();
    } finally {
      await f.cleanup();
    }
  });
});

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres: store events", () => {
  let f: StoreFixture;
  let store: Store;
  let events: JobEventStore;
  let raw: pg.Client;
  let unwatch: () => void;
  beforeEach(async () => {
    f = await postgresFactory.create();
    store = f.store;
    events = store.events!;
    raw = await rawClient(f);
    // A shared store claims only for a live node.
    await asNodes(store, "A");
    // Events are recorded only while someone watches.
    unwatch = await events.watch();
  });
  afterEach(async () => {
    unwatch();
    await raw.end().catch(() => {});
    await f.cleanup();
  });

  /**
   * Waits until every write made so far is readable: events are read only below the oldest
   * transaction in progress on the server, and other tests (other databases) write too.
   */
  async function written(): Promise<void> {
    const now = BigInt((await raw.query<{ x: string }>("SELECT pg_current_xact_id()::text AS x")).rows[0]!.x);
    await waitFor(async () => BigInt((await events.head()).split(".")[1]!) > now, { timeoutMs: 30_000, what: "the horizon to pass the writes" });
  }

  it("records a job's life in the statements that make it: enqueued, claimed, begun, progress, log, finished", async () => {
    const from = await events.head();
    const { inserted, claimed } = await store.jobs.tick(batch("A", { inserts: [newJob({ type: "t" })], claim: anyJobs(1) }));
    const id = inserted[0]!.job.id;
    expect(claimed.map((j) => j.id)).toEqual([id]);
    await store.jobs.tick(batch("A", { begins: [{ id, attempt: 1, at: T0 + 1, slot: 2 }] }));
    await store.jobs.tick(batch("A", { progress: [{ id, attempt: 1, progress: 40, message: "almost" }], logs: [{ id, attempt: 1, at: T0 + 2, message: "a line" }] }));
    // A checkpoint changes nothing a watcher sees: no event.
    await store.jobs.tick(batch("A", { checkpoints: [{ id, attempt: 1, state: { done: 1 } }] }));
    await store.jobs.tick(batch("A", { finishes: [{ id, attempt: 1, outcome: "complete", result: { ok: true } }] }));

    await written();
    const all = await readAll(events, from);
    expect(all.events.map(summary)).toEqual([
      `${id} status pending/0/null`,
      `${id} status running/1/null`,
      `${id} status running/1/2`,
      `${id} progress 40 almost`,
      `${id} log a line`,
      `${id} status complete/1/null`,
    ]);
    const done = all.events.at(-1)!;
    expect(done).toMatchObject({ kind: "status", job: { id, type: "t", status: "complete", progress: 100, progressMessage: "almost", startedAt: T0 + 1, finishedAt: T0, createdAt: T0 } });
    const line = all.events.find((e) => e.kind === "log")!;
    expect(line).toMatchObject({ kind: "log", line: { attempt: 1, at: T0 + 2, message: "a line" } });
    // The line's id is the stored line's.
    const stored = await store.jobs.logs(id, 0);
    expect(line.kind === "log" && line.line.id).toBe(stored[0]!.id);

    // One job's read gives the same events, with the same cursors.
    const mine = await readAll(events, from, id, 2);
    expect(mine.events).toEqual(all.events);
    // Read from the end: nothing more.
    expect((await events.read(all.next, 10)) as { events: unknown[] }).toMatchObject({ events: [] });
  });

  it("parses its own cursors only, and orders them", async () => {
    const a = await events.head();
    await store.jobs.tick(batch("A", { inserts: [newJob(), newJob()] }));
    await written();
    const { events: two } = await readAll(events, a);
    expect(two).toHaveLength(2);
    const [x, y] = [two[0]!.cursor, two[1]!.cursor];
    expect(events.compare(a, x)).toBeLessThan(0);
    expect(events.compare(x, y)).toBeLessThan(0);
    expect(events.compare(y, y)).toBe(0);
    expect(events.parse(` ${x} `)).toBe(x);
    expect(events.parse("0a1b2c3d-12")).toBeNull(); // a SQLite daemon's id
    expect(events.parse((x.startsWith("0") ? "1" : "0") + x.slice(1))).toBeNull(); // another database's
    expect(events.parse("not a cursor")).toBeNull();
  });

  it("keeps a job's events in order when the transaction that claims it took its id before the job was enqueued", async () => {
    const from = await events.head();
    // A transaction that has written something (so it has its id) and claims later, as a
    // tick that writes and then claims does.
    await raw.query("BEGIN");
    await raw.query("SELECT pg_current_xact_id()");
    // Meanwhile another connection enqueues a job and commits.
    const { inserted } = await store.jobs.tick(batch("E", { inserts: [newJob({ type: "late" })] }));
    const id = inserted[0]!.job.id;
    await raw.query("UPDATE jobs SET status = 'running', attempts = attempts + 1, owner = 'A' WHERE id = $1", [id]);
    await raw.query("COMMIT");
    await written();
    const mine = await readAll(events, from, id);
    expect(mine.events.map(summary)).toEqual([`${id} status pending/0/null`, `${id} status running/1/null`]);
    expect((await readAll(events, from)).events.map(summary)).toEqual([`${id} status pending/0/null`, `${id} status running/1/null`]);
  });

  it("never steps over a late commit: 8 writers with random delays before commit, a reader with the xid cursor misses none (an id cursor misses some)", async () => {
    if (f.location.kind !== "postgres") throw new Error("unreachable");
    const url = f.location.url;
    const WRITERS = 8;
    const ROUNDS = 25;
    const from = await events.head();
    let writing = true;

    // The reader under test: carries on from `next`, as fast as it can.
    const seen: StoredJobEvent[] = [];
    const reader = (async () => {
      let at = from;
      while (writing) {
        const page = await events.read(at, 50);
        if ("reset" in page) throw new Error(page.reset);
        seen.push(...page.events);
        at = page.next;
        if (page.events.length === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await written();
      const rest = await readAll(events, at);
      seen.push(...rest.events);
    })();

    // The negative control: a reader that trusts ids (`id > cursor`).
    const control = new pg.Client({ connectionString: url });
    await control.connect();
    const byId = new Set<number>();
    const controlReader = (async () => {
      let last = 0;
      while (writing) {
        const r = await control.query<{ id: string }>("SELECT id FROM job_events WHERE id > $1 ORDER BY id LIMIT 500", [last]);
        for (const row of r.rows) byId.add(Number(row.id));
        if (r.rows.length) last = Number(r.rows.at(-1)!.id);
        else await new Promise((r) => setTimeout(r, 1));
      }
    })();

    // Writers: each transaction enqueues a job (its event takes an id at once), waits a
    // random while, then commits; every other round it also moves an earlier job on.
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        let mine: number | null = null;
        for (let round = 0; round < ROUNDS; round++) {
          await c.query("BEGIN");
          const r = await c.query<{ id: string }>(
            `INSERT INTO jobs (type, payload, status, max_attempts, run_at, priority, created_at) VALUES ($1, '{}', 'pending', 1, now(), 0, now()) RETURNING id`,
            [`w${w}`],
          );
          if (mine !== null && round % 2 === 0) await c.query("UPDATE jobs SET status = 'running', attempts = attempts + 1, owner = $2 WHERE id = $1", [mine, `w${w}`]);
          await new Promise((r) => setTimeout(r, Math.random() * 30));
          await c.query("COMMIT");
          mine = Number(r.rows[0]!.id);
        }
      } finally {
        await c.end();
      }
    });
    await Promise.all(writers);
    writing = false;
    await Promise.all([reader, controlReader]);
    await control.end();

    const expected = (await raw.query<{ xid: string; id: string }>("SELECT xid::text AS xid, id FROM job_events ORDER BY xid, id")).rows.map((r) => Number(r.id));
    expect(expected.length).toBe(WRITERS * ROUNDS + WRITERS * Math.floor((ROUNDS - 1) / 2));
    const got = seen.map((e) => Number(e.cursor.split(".")[2]));
    // Every event once, in the store's order.
    expect(got).toEqual(expected);
    // The control, reading by id alone, stepped over events that committed after a later id.
    const missed = expected.filter((id) => !byId.has(id));
    expect(missed.length).toBeGreaterThan(0);
  });

  it("prunes old events with the jobs' age, and a cursor from before what it keeps is told to reset; a pruned job's events go with it", async () => {
    const from = await events.head();
    const { inserted } = await store.jobs.tick(batch("A", { inserts: [newJob(), newJob()], claim: anyJobs(2) }));
    const [a, b] = inserted.map((i) => i.job.id) as [number, number];
    await store.jobs.tick(batch("A", { now: T0 + 10, finishes: [{ id: a, attempt: 1, outcome: "complete", result: null }] }));
    await written();
    const before = await readAll(events, from);
    expect(before.events).toHaveLength(5);
    // Jobs finished before T0 + 20 are pruned; events written before now + 1 day too.
    const pruned = await store.jobs.prune(T0 + 20);
    expect(pruned).toBe(1);
    const left = (await raw.query<{ job_id: string }>("SELECT DISTINCT job_id FROM job_events")).rows.map((r) => Number(r.job_id));
    expect(left).toEqual([b]);
    await store.jobs.prune(Date.now() + 86_400_000);
    expect((await raw.query("SELECT count(*)::int AS n FROM job_events")).rows[0].n).toBe(0);
    const page = await events.read(from, 10);
    expect(page).toEqual({ reset: expect.stringContaining("no longer kept") });
    // The position after them still reads on.
    const after = await events.read(before.next, 10);
    expect(after).toMatchObject({ events: [] });
  });

  const eventRows = async () => (await raw.query<{ n: number }>("SELECT count(*)::int AS n FROM job_events")).rows[0]!.n;
  const recording = async () => (await raw.query<{ recording: boolean }>("SELECT recording FROM job_event_log")).rows[0]!.recording;

  it("records nothing while nobody watches, anywhere; a watch on any store turns recording on for every writer, and a cursor from before the spell is told to reset", async () => {
    const from = await events.head();
    await store.jobs.tick(batch("A", { inserts: [newJob()] }));
    await written();
    expect((await readAll(events, from)).events).toHaveLength(1);
    const n = await eventRows();

    // The last watch given up: recording stops (the give-up is on its way when unwatch returns).
    unwatch();
    await waitFor(async () => !(await recording()), { timeoutMs: 10_000, what: "recording to stop" });
    const { inserted, claimed } = await store.jobs.tick(batch("A", { inserts: [newJob(), newJob()], claim: anyJobs(2) }));
    await store.jobs.tick(batch("A", { progress: [{ id: claimed[0]!.id, attempt: 1, progress: 5, message: null }], logs: [{ id: claimed[0]!.id, attempt: 1, at: T0, message: "unseen" }] }));
    expect(inserted).toHaveLength(2);
    expect(await eventRows()).toBe(n);
    // A reader with no watch anywhere is told so, not given an empty page.
    expect(await events.read(from, 10)).toEqual({ reset: expect.stringContaining("not all recorded") });

    // Another process watches: this store's writes are recorded again (it watches nothing itself).
    const other = await f.openAnother();
    try {
      const release = await other.events!.watch();
      const head = await other.events!.head();
      const { inserted: more } = await store.jobs.tick(batch("A", { inserts: [newJob()] }));
      await written();
      const page = await readAll(other.events!, head);
      expect(page.events.map(summary)).toEqual([`${more[0]!.job.id} status pending/0/null`]);
      // A resume from before the spell spans events that were never written: reset, never a gap.
      expect(await other.events!.read(from, 10)).toEqual({ reset: expect.stringContaining("not all recorded") });
      release();
    } finally {
      await other.close();
    }
  });

  it("a watch that starts while a write that saw nobody watching is still open: the head waits for that write to end", async () => {
    unwatch();
    await waitFor(async () => !(await recording()), { timeoutMs: 10_000, what: "recording to stop" });
    await raw.query("BEGIN");
    const x = BigInt((await raw.query<{ x: string }>("INSERT INTO jobs (type, payload, status, max_attempts, run_at, priority, created_at) VALUES ('t', '{}', 'pending', 1, now(), 0, now()) RETURNING pg_current_xact_id()::text AS x")).rows[0]!.x);
    let committed = false;
    const watching = (async () => {
      unwatch = await events.watch();
      const head = await events.head();
      return { head, committed };
    })();
    // The mark is taken (after the write's id, which is still open), then the write ends.
    await waitFor(async () => (await raw.query("SELECT 1 FROM job_event_log WHERE recorded_from IS NOT NULL")).rowCount === 1, { timeoutMs: 10_000, what: "the mark" });
    committed = true;
    await raw.query("COMMIT");
    const { head } = await watching;
    // The head is past the write: a fresh stream's snapshot (read after the head) has the job, though it has no event.
    expect(BigInt(head.split(".")[1]!)).toBeGreaterThan(x);
    expect(committed).toBe(true);
  });

  it("a watch that lapsed (its process stalled past the lease) and was swept: reads reset rather than step over what was not recorded, and the head takes the watch again", async () => {
    const from = await events.head();
    await raw.query("UPDATE job_event_watchers SET lease_until = now() - interval '1 second'");
    // Any node's rescue sweeps it.
    await store.nodes.rescueDead({ now: T0, self: "A", silentMs: 60_000, leaseMs: 60_000 });
    expect(await recording()).toBe(false);
    await store.jobs.tick(batch("A", { inserts: [newJob()] }));
    expect(await events.read(from, 10)).toEqual({ reset: expect.stringContaining("not all recorded") });
    const head = await events.head();
    expect(await recording()).toBe(true);
    const { inserted } = await store.jobs.tick(batch("A", { inserts: [newJob()] }));
    await written();
    expect((await readAll(events, head)).events.map(summary)).toEqual([`${inserted[0]!.job.id} status pending/0/null`]);
    expect(await events.read(from, 10)).toEqual({ reset: expect.stringContaining("not all recorded") });
  });

  it("hints at its own writes at once, and another process's by NOTIFY", async () => {
    let hints = 0;
    const stop = events.onWrite(() => hints++);
    try {
      await store.jobs.tick(batch("A", { inserts: [newJob()] }));
      expect(hints).toBe(1);
      // A claim that claims nothing wrote nothing: no hint.
      await store.jobs.claim({ ...anyJobs(0), owner: "A", now: T0 });
      expect(hints).toBe(1);
      const other = await f.openAnother();
      const before = hints;
      // The LISTEN connection opens in the background: a NOTIFY sent before it listens is
      // not heard (the readers poll anyway), so the other process writes until one is.
      await waitFor(
        async () => {
          await other.jobs.tick(batch("B", { inserts: [newJob()] }));
          await new Promise((r) => setTimeout(r, 200));
          return hints > before;
        },
        { timeoutMs: 30_000, what: "a hint of another process's write" },
      );
    } finally {
      stop();
    }
  });
});
