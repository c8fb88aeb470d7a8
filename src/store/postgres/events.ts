// Job events on PostgreSQL (Store.events): the rows the triggers of migration 005 write in
// the statements that change jobs, read back in one order every daemon shares.
//
// The order, and why it misses nothing (SCALE-OUT.md §9.4): events are read by (xid, id)
// after a cursor, and only those with xid below the oldest transaction still in progress
// anywhere on the server (pg_snapshot_xmin of the reading statement's snapshot). Such a row's
// transaction has ended, so it is readable now or never will be; a transaction still running
// holds every row at or above its id back, so a cursor can never move past a row that commits
// late. An event's xid is its transaction's id or greater (the raise in 005), never lower.
// A cursor `tag.xid.id` is "every event up to (xid, id) was read"; (horizon, 0) says "up to
// the horizon". The tag names the database (job_event_log), so a cursor of another database
// is refused instead of being read as a position here.
//
// Caveats: a long transaction that wrote anything on the server (any database) holds every
// reader back until it ends, as it holds vacuum back. Events are kept as long as finished
// jobs are (pruned by age with them; a pruned job's events go with it).
//
// Only while someone watches (migration 008): the triggers write events only while some
// process holds a watch (JobEventStore.watch: a row of job_event_watchers under a lease,
// renewed every WATCH_RENEW_MS and swept once lapsed, by any node's rescue (nodes.ts) or any
// watcher's renewal). When watching starts after nobody watched, the log is marked complete
// only from a transaction that began after the start (job_event_log.recorded_from); a read from a
// cursor before the mark, or while nobody is recorded as watching (a watch that lapsed under
// a stalled process), is answered reset, as a read from before what pruning kept is; and the
// head waits for every write older than the mark to end (its events, or its change, may be
// missing: a fresh stream's snapshot of the state must come after them).
//
// Wake-ups: a read is cheap, and readers poll while they have watchers; hints make them read
// sooner. This store hints its own readers at once after its writes, and every other process
// on the database by NOTIFY tw_events, at most one per NOTIFY_EVERY_MS, sent after the
// write's commit and never inside it (a NOTIFY in a transaction serialises commits:
// SCALE-OUT.md §8.4). Its readers LISTEN on a connection of their own while any hint is
// wanted; when that connection is lost they are told nothing until it is back, and poll.

import { randomBytes } from "node:crypto";
import pg from "pg";
import type { EventCursor, EventPage, JobEventStore, JobHeadRecord, JobStore, StoredJobEvent } from "../types.js";
import { CONNECT_TIMEOUT_MS, ts } from "./connect.js";

/** The channel every store on the database notifies after writing events. */
export const EVENTS_CHANNEL = "tw_events";
/** A store sends at most one NOTIFY per this many ms (the first at once, the rest at the end of the wait). */
export const NOTIFY_EVERY_MS = 50;
/** How long a lost LISTEN connection waits before it is made again. */
const LISTEN_RETRY_MS = 2000;
/**
 * A watch's lease (on the database's clock): events stop at most this long after the last
 * watching process stops renewing (it died, or it closed: a watch is left to lapse at close,
 * so that a daemon restarted within it resumes its watchers with no gap).
 */
export const WATCH_LEASE_MS = 30_000;
/** A watch is renewed this often (several renewals per lease: one late or lost costs nothing). */
export const WATCH_RENEW_MS = 10_000;
/** How long the head waits for the writes older than the mark to end before it gives up. */
const HEAD_WAIT_MS = 30_000;
/** Events deleted per statement when pruning by age. */
const PRUNE_BATCH = 5000;

const CURSOR = /^([0-9a-f]{8})\.(\d{1,20})\.(\d{1,19})$/;

interface Position {
  xid: bigint;
  id: bigint;
}

const cursorOf = (tag: string, xid: string | bigint, id: string | number | bigint): EventCursor => `${tag}.${xid}.${id}` as EventCursor;

interface EventRow {
  horizon: string;
  settled: boolean;
  pruned_xid: string;
  pruned_id: number;
  recording: boolean;
  recorded_from: string | null;
  xid: string | null;
  id: number | null;
  job_id: number;
  kind: "status" | "progress" | "log";
  attempt: number;
  status: JobHeadRecord["status"] | null;
  max_attempts: number | null;
  slot: number | null;
  error: string | null;
  run_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  progress: number | null;
  message: string | null;
  line_id: number | null;
  at: number;
  // Of the job (status events only; null if it was deleted since).
  type: string | null;
  priority: number | null;
  unique_key: string | null;
  created_at: number | null;
}

// The horizon, the pruned mark and a page of events after ($1, $2), in one statement (one
// snapshot: the page and the horizon agree). `(e.xid, e.id) > ($1, $2)` is a range of the
// primary key; a job's page is a range of job_events_job. A status event takes what never
// changes of its job from the job.
const readSql = (where: string, order: string) => `
  SELECT h.horizon::text AS horizon, h.settled, l.pruned_xid::text AS pruned_xid, l.pruned_id, l.recording, l.recorded_from::text AS recorded_from,
         e.xid::text AS xid, e.id, e.job_id, e.kind,
         e.attempt, e.status, e.max_attempts, e.slot, e.error, e.run_at, e.started_at, e.finished_at, e.progress, e.message, e.line_id, e.at,
         j.type, j.priority, j.unique_key, j.created_at
    FROM (SELECT pg_snapshot_xmin(s) AS horizon, pg_snapshot_xmin(s) = pg_snapshot_xmax(s) AS settled FROM pg_current_snapshot() AS s) h
   CROSS JOIN job_event_log l
    LEFT JOIN LATERAL (
      SELECT * FROM job_events e WHERE ${where} AND e.xid < h.horizon ORDER BY ${order} LIMIT $3) e ON true
    LEFT JOIN jobs j ON e.kind = 'status' AND j.id = e.job_id
   ORDER BY e.xid, e.id`;
const READ_ALL = readSql("(e.xid, e.id) > ($1::xid8, $2::bigint)", "e.xid, e.id");
const READ_JOB = readSql("(e.job_id, e.xid, e.id) > ($4::bigint, $1::xid8, $2::bigint) AND e.job_id = $4", "e.job_id, e.xid, e.id");

// Deletes the oldest events written before $1, below the horizon, as a prefix of the order
// (up to the first event that is kept), and moves the pruned mark to the last one deleted.
const PRUNE = `
  WITH head AS (
         SELECT xid, id, at FROM job_events WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY xid, id LIMIT ${PRUNE_BATCH}),
       kept AS (SELECT xid, id FROM head WHERE at >= $1 ORDER BY xid, id LIMIT 1),
       gone AS (
         DELETE FROM job_events e USING head h
          WHERE e.xid = h.xid AND e.id = h.id AND NOT EXISTS (SELECT 1 FROM kept k WHERE (h.xid, h.id) >= (k.xid, k.id))
         RETURNING e.xid, e.id),
       last AS (SELECT xid, id FROM gone ORDER BY xid DESC, id DESC LIMIT 1),
       mark AS (UPDATE job_event_log l SET pruned_xid = last.xid, pruned_id = last.id FROM last RETURNING 1)
  SELECT count(*)::int AS n FROM gone`;

// A watch taken or renewed: this process's row, with a fresh lease; other processes' lapsed
// rows swept in the same statement. Its row triggers flip job_event_log.recording (008).
const WATCH = `WITH swept AS (DELETE FROM job_event_watchers
                 WHERE id IN (SELECT id FROM job_event_watchers WHERE lease_until < now() AND id <> $1 FOR UPDATE SKIP LOCKED))
  INSERT INTO job_event_watchers (id, lease_until) VALUES ($1, now() + make_interval(secs => $2 / 1000.0))
  ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until`;
// The mark, in a transaction of its own that begins after the watch committed (008: why that
// makes it exact); only if watching has just started and nobody has taken it yet.
const MARK = "UPDATE job_event_log SET recorded_from = pg_current_xact_id() WHERE recording AND recorded_from IS NULL";
const HEAD = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon, l.recording, l.recorded_from::text AS recorded_from
  FROM job_event_log l`;

/** The event of a row; null for a status event whose job was deleted since (its events go with it). */
function toEvent(tag: string, r: EventRow): StoredJobEvent | null {
  const base = { cursor: cursorOf(tag, r.xid!, r.id!), jobId: r.job_id, at: r.at };
  switch (r.kind) {
    case "status":
      if (r.type === null) return null;
      return {
        ...base,
        kind: "status",
        job: {
          id: r.job_id,
          type: r.type,
          status: r.status!,
          progress: r.progress!,
          progressMessage: r.message,
          attempts: r.attempt,
          maxAttempts: r.max_attempts!,
          runAt: r.run_at!,
          priority: r.priority!,
          uniqueKey: r.unique_key,
          slot: r.slot,
          error: r.error,
          createdAt: r.created_at!,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
        },
      };
    case "progress":
      return { ...base, kind: "progress", attempt: r.attempt, progress: r.progress!, message: r.message };
    case "log":
      return { ...base, kind: "log", line: { id: r.line_id!, attempt: r.attempt, at: r.at, message: r.message! } };
  }
}

const cmp = (a: Position, b: Position): number => (a.xid < b.xid ? -1 : a.xid > b.xid ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Tells this store's readers, and (by NOTIFY) other processes', that events were written. */
export interface EventSignal {
  wrote(): void;
  close(): void;
}

export interface PgEvents {
  events: JobEventStore;
  signal: EventSignal;
  /**
   * At close: stops renewing this process's watch, and leaves it to lapse with its lease
   * rather than giving it up, so that a daemon restarted meanwhile (its watchers reconnecting)
   * finds events still recorded: their resume then spans no gap.
   */
  leaveWatch(): void;
  /** Deletes events written before `before` (epoch ms), as a prefix of the order; returns how many. */
  prune(before: number): Promise<number>;
}

/** Opens the events of the database (reads its tag: one query). */
export async function pgEvents(pool: pg.Pool, url: string): Promise<PgEvents> {
  const tag = (await pool.query<{ tag: string }>("SELECT tag FROM job_event_log")).rows[0]!.tag;
  // This store's NOTIFYs carry its id, so that its own LISTEN ignores them (it was told at once).
  const self = randomBytes(6).toString("hex");
  const hints = new Set<() => void>();
  const tell = () => {
    for (const h of hints) {
      try {
        h();
      } catch {
        // A failing reader must not break the store's write path.
      }
    }
  };

  let lastNotify = -Infinity;
  let notifyTimer: NodeJS.Timeout | null = null;
  let closed = false;
  const notify = () => {
    notifyTimer = null;
    lastNotify = Date.now();
    // After the write's commit, on a pooled connection of its own; a lost NOTIFY costs a poll.
    pool.query("SELECT pg_notify($1, $2)", [EVENTS_CHANNEL, self]).catch(() => {});
  };
  const signal: EventSignal = {
    wrote() {
      tell();
      if (closed || notifyTimer) return;
      const wait = lastNotify + NOTIFY_EVERY_MS - Date.now();
      if (wait <= 0) notify();
      else notifyTimer = setTimeout(notify, wait).unref();
    },
    close() {
      closed = true;
      if (notifyTimer) clearTimeout(notifyTimer);
      notifyTimer = null;
      hints.clear();
      listener.stop();
    },
  };

  const listener = listen(url, self, tell);

  const parse = (text: string): (Position & { tag: string }) | null => {
    const m = CURSOR.exec(text.trim());
    if (!m) return null;
    return { tag: m[1]!, xid: BigInt(m[2]!), id: BigInt(m[3]!) };
  };
  const position = (c: EventCursor): Position => {
    const p = parse(c);
    if (!p || p.tag !== tag) throw new Error(`not an event cursor of this database: ${String(c).slice(0, 60)}`);
    return p;
  };

  // This process's watch: one row (id `self`) however many readers hold it; taken, renewed
  // and given up one statement at a time, in order (a give-up never overtakes a take).
  let holders = 0;
  let renewTimer: NodeJS.Timeout | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  const inOrder = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn);
    queue = p.catch(() => {});
    return p;
  };
  const declare = () =>
    inOrder(async () => {
      await pool.query({ name: "tw_events_watch", text: WATCH, values: [self, WATCH_LEASE_MS] });
      await pool.query({ name: "tw_events_mark", text: MARK });
    });
  const giveUp = () =>
    inOrder(async () => {
      if (holders === 0) await pool.query("DELETE FROM job_event_watchers WHERE id = $1", [self]);
    });
  const renew = () => {
    const timer: NodeJS.Timeout = setTimeout(() => {
      // A renewal that fails is tried again at the next; a lease that lapses meanwhile makes
      // the readers reset (never a silent gap), and the renewal after takes the watch again.
      declare()
        .catch(() => {})
        .finally(() => {
          if (renewTimer === timer) renew();
        });
    }, WATCH_RENEW_MS).unref();
    renewTimer = timer;
  };

  const events: JobEventStore = {
    async watch() {
      holders++;
      if (holders === 1) renew();
      try {
        await declare();
      } catch (err) {
        release();
        throw err;
      }
      let released = false;
      function release() {
        if (released) return;
        released = true;
        holders--;
        if (holders > 0) return;
        if (renewTimer) clearTimeout(renewTimer);
        renewTimer = null;
        // A give-up that fails is ended by the lease.
        giveUp().catch(() => {});
      }
      return release;
    },
    async head() {
      const started = Date.now();
      for (let wait = 1; ; wait = Math.min(20, wait * 2)) {
        const r = (await pool.query<{ horizon: string; recording: boolean; recorded_from: string | null }>({ name: "tw_events_head", text: HEAD })).rows[0]!;
        if (Date.now() - started > HEAD_WAIT_MS) throw new Error(`the event log could not start within ${HEAD_WAIT_MS / 1000} s (a transaction older than its start, xid ${r.horizon}, is still in progress)`);
        if (holders > 0 && (!r.recording || r.recorded_from === null)) {
          // The watch lapsed (this process stalled past its lease) and nobody else watched: take it again.
          await declare();
        } else if (r.recorded_from === null || BigInt(r.horizon) >= BigInt(r.recorded_from)) {
          return cursorOf(tag, r.horizon, 0);
        } else {
          // Writes older than the mark are still in progress: some of their events may be missing.
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    },
    async read(after, limit, jobId) {
      const from = position(after);
      const values: unknown[] = [from.xid.toString(), from.id.toString(), limit];
      if (jobId !== undefined) values.push(jobId);
      const rows = (await pool.query<EventRow>({ name: jobId === undefined ? "tw_events_read" : "tw_events_read_job", text: jobId === undefined ? READ_ALL : READ_JOB, values })).rows;
      const first = rows[0]!;
      const pruned = { xid: BigInt(first.pruned_xid), id: BigInt(first.pruned_id) };
      if (cmp(from, pruned) < 0) return { reset: "the events after that id are no longer kept (they were pruned with the jobs they were about)" } satisfies EventPage;
      if (!first.recording || first.recorded_from === null || cmp(from, { xid: BigInt(first.recorded_from), id: 0n }) < 0) {
        return { reset: "the events after that id were not all recorded (nobody watched on any daemon for a while)" } satisfies EventPage;
      }
      const read = rows.filter((r) => r.xid !== null);
      const out: StoredJobEvent[] = [];
      for (const r of read) {
        const e = toEvent(tag, r);
        if (e) out.push(e);
      }
      // A full page carries on after its last event; a short one read everything readable: past the horizon.
      const last = read.at(-1);
      let next = last ? { xid: BigInt(last.xid!), id: BigInt(last.id!) } : from;
      if (read.length < limit) {
        const horizon = { xid: BigInt(first.horizon), id: 0n };
        if (cmp(horizon, next) > 0) next = horizon;
      }
      return { events: out, next: cursorOf(tag, next.xid, next.id), settled: first.settled };
    },
    parse(text) {
      const p = parse(text);
      return p && p.tag === tag ? cursorOf(tag, p.xid, p.id) : null;
    },
    compare(a, b) {
      return cmp(position(a), position(b));
    },
    onWrite(hint) {
      hints.add(hint);
      listener.want(hints.size > 0);
      return () => {
        hints.delete(hint);
        listener.want(hints.size > 0);
      };
    },
  };

  return {
    events,
    signal,
    leaveWatch() {
      if (renewTimer) clearTimeout(renewTimer);
      renewTimer = null;
    },
    async prune(before) {
      let total = 0;
      for (;;) {
        const n = (await pool.query<{ n: number }>({ name: "tw_events_prune", text: PRUNE, values: [ts(before)] })).rows[0]!.n;
        total += n;
        if (n < PRUNE_BATCH) return total;
      }
    },
  };
}

/**
 * A LISTEN on tw_events on a connection of its own, held while `want(true)`: calls `heard`
 * for every NOTIFY not sent by `self`. Lost, it is made again after LISTEN_RETRY_MS.
 */
function listen(url: string, self: string, heard: () => void): { want(on: boolean): void; stop(): void } {
  let wanted = false;
  let stopped = false;
  let client: pg.Client | null = null;
  let retry: NodeJS.Timeout | null = null;
  const drop = () => {
    const c = client;
    client = null;
    c?.removeAllListeners("notification");
    void c?.end().catch(() => {});
  };
  const open = () => {
    if (client || stopped || !wanted) return;
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: "teamwork events" });
    client = c;
    const lost = () => {
      if (client !== c) return;
      drop();
      // Nothing was heard while it was down: the readers are told once, then poll as ever.
      heard();
      if (!stopped && wanted) retry ??= setTimeout(() => ((retry = null), open()), LISTEN_RETRY_MS).unref();
    };
    c.on("error", lost);
    c.on("end", lost);
    c.on("notification", (n) => {
      if (n.payload !== self) heard();
    });
    c.connect()
      .then(() => c.query(`LISTEN ${EVENTS_CHANNEL}`))
      .catch(lost);
  };
  return {
    want(on) {
      wanted = on;
      if (on) open();
      else {
        if (retry) clearTimeout(retry);
        retry = null;
        drop();
      }
    },
    stop() {
      stopped = true;
      this.want(false);
    },
  };
}

/**
 * The job store with hints: after each write that may have made events (they are the
 * triggers' work, so every write of a job's status, progress or log), the store's readers are
 * told at once and other processes by NOTIFY.
 */
export function withEventHints(jobs: JobStore, signal: EventSignal, prune: (before: number) => Promise<number>): JobStore {
  const after =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>, made: (r: R, ...args: A) => boolean) =>
    async (...args: A): Promise<R> => {
      const r = await fn(...args);
      if (made(r, ...args)) signal.wrote();
      return r;
    };
  return {
    ...jobs,
    tick: after(jobs.tick, (r, b) => r.inserted.length > 0 || r.finished.length > 0 || r.claimed.length > 0 || b.progress.length > 0 || b.logs.length > 0 || b.begins.length > 0),
    claim: after(jobs.claim, (r) => r.claimed.length > 0),
    cancelPending: after(jobs.cancelPending, (r) => r !== null),
    // A pending job cancelled (a running one's request changes no status: its end will).
    requestCancel: after(jobs.requestCancel, (r) => r?.outcome === "cancelled"),
    retry: after(jobs.retry, (r) => r !== null),
    rescue: after(jobs.rescue, (r) => r.interrupted > 0 || r.cancelled > 0),
    // Events are kept as long as finished jobs are: pruned by the same age.
    async prune(finishedBefore) {
      const n = await jobs.prune(finishedBefore);
      await prune(finishedBefore);
      return n;
    },
  };
}
