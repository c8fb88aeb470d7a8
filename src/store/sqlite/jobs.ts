import { newJobRecord, toJobSummary } from "../rows.js";
import type { Json, JobStatus } from "../../protocol/types.js";
import { JOB_PREVIEW_CHARS, JOB_STATUSES } from "../../protocol/types.js";
import { MAX_RESULT_BYTES, resultTooLarge } from "../../protocol/routes.js";
import type { CancelAnswer, ClaimLimits, ClaimResult, Finish, JobRecord, JobStore, NewJob, RefusedWrite, TickBatch, TickResult } from "../types.js";
import { conflict } from "../../lib/errors.js";
import { claimMore } from "../claim-budget.js";
import type { Db } from "./open.js";

export interface Row {
  id: number;
  type: string;
  payload: string;
  status: JobStatus;
  progress: number;
  progress_message: string | null;
  attempts: number;
  max_attempts: number;
  run_at: number;
  priority: number;
  unique_key: string | null;
  slot: number | null;
  result: string | null;
  error: string | null;
  errors: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  state: string | null;
}

export const toRecord = (r: Row): JobRecord => ({
  id: r.id,
  type: r.type,
  payload: JSON.parse(r.payload) as Json,
  status: r.status,
  progress: r.progress,
  progressMessage: r.progress_message,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  runAt: r.run_at,
  priority: r.priority,
  uniqueKey: r.unique_key,
  slot: r.slot,
  result: r.result === null ? null : (JSON.parse(r.result) as Json),
  error: r.error,
  errors: JSON.parse(r.errors) as JobRecord["errors"],
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  state: r.state === null ? null : (JSON.parse(r.state) as Json),
});

// What a claim reads of each due job, as an array (better-sqlite3's raw mode) in this order:
// the columns its record keeps from the row (the rest its claim sets). A row as an object of
// every column cost 10.4-11.7 µs per job, this 2.4-3.4 µs (20,000 due jobs read 128 at a
// time, process CPU; /tmp micro-benchmark on the store's schema, 2 runs): the driver makes each
// object property by name, and most columns are never used.
const DUE_COLUMNS = "id, type, payload, attempts, max_attempts, run_at, priority, unique_key, result, error, errors, created_at, finished_at, state";
type DueRow = [
  id: number,
  type: string,
  payload: string,
  attempts: number,
  maxAttempts: number,
  runAt: number,
  priority: number,
  uniqueKey: string | null,
  result: string | null,
  error: string | null,
  errors: string,
  createdAt: number,
  finishedAt: number | null,
  state: string | null,
];

/** A due job as its claim (claimOne) leaves it: running, its attempt counted, no slot nor start yet. */
const claimedRecord = (d: DueRow): JobRecord => ({
  id: d[0],
  type: d[1],
  payload: JSON.parse(d[2]) as Json,
  status: "running",
  progress: 0,
  progressMessage: null,
  attempts: d[3] + 1,
  maxAttempts: d[4],
  runAt: d[5],
  priority: d[6],
  uniqueKey: d[7],
  slot: null,
  result: d[8] === null ? null : (JSON.parse(d[8]) as Json),
  error: d[9],
  errors: JSON.parse(d[10]) as JobRecord["errors"],
  createdAt: d[11],
  startedAt: null,
  finishedAt: d[12],
  state: d[13] === null ? null : (JSON.parse(d[13]) as Json),
});

interface SummaryRow extends Omit<Row, "payload" | "result" | "errors" | "state"> {
  payload_bytes: number;
  payload_preview: string;
  result_bytes: number | null;
  result_preview: string | null;
}

// What a list shows. octet_length() takes a value's size from the row's header without
// copying it out; substr() keeps only the start. Measured on 1,000 rows with 256 KiB payloads:
// 75-120 ms, against 300 ms for SELECT * before the JSON.parse of each payload and result.
const SUMMARY_COLUMNS = `id, type, status, progress, progress_message, attempts, max_attempts, run_at, priority, unique_key, slot,
  created_at, started_at, finished_at,
  CASE WHEN length(error) > ${JOB_PREVIEW_CHARS} THEN substr(error, 1, ${JOB_PREVIEW_CHARS - 1}) || '…' ELSE error END AS error,
  octet_length(payload) AS payload_bytes, substr(payload, 1, ${JOB_PREVIEW_CHARS}) AS payload_preview,
  octet_length(result) AS result_bytes, substr(result, 1, ${JOB_PREVIEW_CHARS}) AS result_preview`;


// Appends one {attempt, message, permanent, at} object to the errors array.
const APPEND_ERROR = `errors = json_insert(errors, '$[#]', json_object('attempt', attempts, 'message', @error, 'permanent', json(@permanent), 'at', @now, 'crashed', json(@crashed)))`;
/** Due jobs read at a time by a claim with a time budget (ClaimLimits.budgetMs). */
const CLAIM_PAGE_ROWS = 32;
/**
 * Finished jobs read at a time by stats, in the order of their end, a turn of the event loop
 * between two pages: the figures over a day of a busy queue are one pass over its finished
 * jobs, and in one go that held the main thread (and /health) in proportion, 204 ms (median)
 * for 30,000 (one query, sorted row objects); in pages, each is a few ms whatever the count.
 * Rows that change between two pages show as the page that read them found them.
 */
export const STATS_PAGE_ROWS = 2000;

/** What stats gathers of one type, page after page. */
interface TypeTally {
  finished: number;
  complete: number;
  failed: number;
  cancelled: number;
  retried: number;
  /** Completed jobs' run times (finished − started), ms. */
  runs: number[];
  /** Started jobs' latencies (started − due, at least 0), ms. */
  latencies: number[];
}

/** Log lines kept per job; older ones are dropped. */
export const MAX_LOG_LINES = 200;
// Fencing: a write of an attempt applies only while that attempt is still the job's running
// one, for the owner (daemon run) that claimed it.
// No RETURNING on the hot statements: on this table it costs several times the write itself
// (measured: a claim by id 7 µs plain, 100 µs with RETURNING *); the record is built in
// JavaScript (inserts, claims) or read back by id (finishes) instead.
const FENCE = `WHERE id = @id AND status = 'running' AND attempts = @attempt AND owner = @owner`;
// An attempt whose cancel was requested (migration 011) ends cancelled, whatever it returned:
// the result is kept, the status is not complete. Every finish says so.
const CANCEL_ASKED = `cancel_requested_at IS NOT NULL`;

const INSERT_JOB = `INSERT INTO jobs (type, payload, status, max_attempts, run_at, priority, unique_key, created_at)
     VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)`;

/** The one INSERT of a job, shared by the engine's tick and schedule firings. */
export function jobInserter(db: Db): (job: NewJob, now: number) => JobRecord {
  const insert = db.prepare<[string, string, number, number, number, string | null, number]>(INSERT_JOB);
  return (job, now) => newJobRecord(Number(insert.run(job.type, JSON.stringify(job.payload), job.maxAttempts, job.runAt, job.priority, job.uniqueKey, now).lastInsertRowid), job, now);
}

/**
 * A job with a unique key is inserted only if no live (pending or running) job holds the key:
 * the database decides, by its unique partial index jobs_unique_live (migration 001), so two
 * writers racing with the same key cannot both insert. Otherwise the live job is returned.
 */
function uniqueJobInserter(db: Db): (job: NewJob & { uniqueKey: string }, now: number) => { job: JobRecord; created: boolean } {
  const insert = db.prepare<[string, string, number, number, number, string, number]>(
    `${INSERT_JOB} ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('pending', 'running') DO NOTHING`,
  );
  const findLive = db.prepare<[string], Row>(`SELECT * FROM jobs WHERE unique_key = ? AND status IN ('pending', 'running')`);
  return (job, now) => {
    const r = insert.run(job.type, JSON.stringify(job.payload), job.maxAttempts, job.runAt, job.priority, job.uniqueKey, now);
    if (r.changes === 1) return { job: newJobRecord(Number(r.lastInsertRowid), job, now), created: true };
    return { job: toRecord(findLive.get(job.uniqueKey)!), created: false };
  };
}


/** A cancelled attempt's result as stored text, or null when it cannot be stored (the job is cancelled all the same). */
function storableResult(result: Json): string | null {
  try {
    const text = JSON.stringify(result ?? null);
    return Buffer.byteLength(text) > MAX_RESULT_BYTES ? null : text;
  } catch {
    return null;
  }
}

export function sqliteJobs(db: Db): JobStore {
  const insert = jobInserter(db);
  const insertUnique = uniqueJobInserter(db);
  const finishStmts: Record<Finish["outcome"], ReturnType<typeof db.prepare<[Record<string, unknown>]>>> = {
    complete: db.prepare(
      `UPDATE jobs SET status = 'complete', result = @result, progress = 100, error = NULL, slot = NULL, owner = NULL, finished_at = @now ${FENCE}`,
    ),
    retry: db.prepare(
      `UPDATE jobs SET status = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled' ELSE 'pending' END, error = @error, ${APPEND_ERROR}, slot = NULL, owner = NULL,
         run_at = CASE WHEN ${CANCEL_ASKED} THEN run_at ELSE @runAt END, finished_at = CASE WHEN ${CANCEL_ASKED} THEN @now END,
         started_at = coalesce(started_at, @startedAt) ${FENCE}`,
    ),
    failed: db.prepare(
      `UPDATE jobs SET status = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled' ELSE 'failed' END, error = @error, ${APPEND_ERROR}, slot = NULL, owner = NULL,
         finished_at = @now, started_at = coalesce(started_at, @startedAt) ${FENCE}`,
    ),
    cancelled: db.prepare(
      `UPDATE jobs SET status = 'cancelled', error = @error, slot = NULL, owner = NULL, finished_at = @now, started_at = coalesce(started_at, @startedAt),
         result = coalesce(@result, result) ${FENCE}`,
    ),
    requeue: db.prepare(
      `UPDATE jobs SET status = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled' ELSE 'pending' END,
         attempts = CASE WHEN ${CANCEL_ASKED} THEN attempts ELSE attempts - 1 END,
         error = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled by user' ELSE error END, finished_at = CASE WHEN ${CANCEL_ASKED} THEN @now END,
         slot = NULL, owner = NULL, started_at = CASE WHEN ${CANCEL_ASKED} THEN started_at END ${FENCE}`,
    ),
  };
  // A complete of an attempt whose cancel was requested: the result is kept, the job is
  // cancelled (tried only when the complete below matched nothing: the hot path pays nothing).
  const completeCancelled = db.prepare<[string, number, number | null, number, number, string]>(
    `UPDATE jobs SET status = 'cancelled', result = ?, error = 'cancelled by user', slot = NULL, owner = NULL, finished_at = ?,
       started_at = coalesce(started_at, ?) WHERE id = ? AND status = 'running' AND attempts = ? AND owner = ? AND ${CANCEL_ASKED}`,
  );
  const askCancel = db.prepare<[number, number, number], { owner: string | null; cancel_deadline: number }>(
    `UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, ?), cancel_deadline = coalesce(cancel_deadline, ?)
     WHERE id = ? AND status = 'running' RETURNING owner, cancel_deadline`,
  );
  // The common finish, with positional parameters (binding named ones costs more).
  const complete = db.prepare<[string, number, number | null, number, number, string]>(
    `UPDATE jobs SET status = 'complete', result = ?, progress = 100, error = NULL, slot = NULL, owner = NULL, finished_at = ?,
       started_at = coalesce(started_at, ?) WHERE id = ? AND status = 'running' AND attempts = ? AND owner = ? AND cancel_requested_at IS NULL`,
  );
  const begin = db.prepare<[number, number, number, number, string]>(
    `UPDATE jobs SET started_at = coalesce(started_at, ?), slot = ? WHERE id = ? AND status = 'running' AND attempts = ? AND owner = ?`,
  );
  const setProgress = db.prepare(`UPDATE jobs SET progress = @progress, progress_message = @message ${FENCE}`);
  const setState = db.prepare(`UPDATE jobs SET state = @state ${FENCE}`);
  // A log line is kept only while its attempt runs for this owner (a late one is refused).
  const insertLog = db.prepare<[number, number, number, string, number, number, string]>(
    `INSERT INTO job_logs (job_id, attempt, at, message) SELECT ?, ?, ?, ?
     WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ? AND status = 'running' AND attempts = ? AND owner = ?)`,
  );
  const trimLogs = db.prepare<[number, number, number]>(
    `DELETE FROM job_logs WHERE job_id = ? AND id <= (SELECT id FROM job_logs WHERE job_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
  );
  const readLogs = db.prepare<[number, number], { id: number; job_id: number; attempt: number; at: number; message: string }>(
    `SELECT * FROM job_logs WHERE job_id = ? AND id > ? ORDER BY id LIMIT 1000`,
  );
  const selectDue = db
    .prepare<[number, number], DueRow>(
      // INDEXED BY: without statistics the planner prefers jobs_status and sorts every pending row.
      `SELECT ${DUE_COLUMNS} FROM jobs INDEXED BY jobs_due WHERE status = 'pending' AND run_at <= ? ORDER BY priority DESC, run_at, id LIMIT ?`,
    )
    .raw(true);
  // Slot and started_at are the owner's to write when the job's turn begins (begins).
  const claimOne = db.prepare<[string, number]>(
    `UPDATE jobs SET status = 'running', slot = NULL, attempts = attempts + 1, started_at = NULL, owner = ?,
       progress = 0, progress_message = NULL WHERE id = ? AND status = 'pending'`,
  );
  const getOne = db.prepare<[number], Row>(`SELECT * FROM jobs WHERE id = ?`);
  const counts = db.prepare<[], { status: JobStatus; n: number }>(`SELECT status, count(*) AS n FROM jobs GROUP BY status`);
  const runningFor = db.prepare<[string], { id: number; attempt: number }>(`SELECT id, attempts AS attempt FROM jobs WHERE status = 'running' AND owner = ? ORDER BY id`);
  const cancelPending = db.prepare<[number, number], Row>(
    `UPDATE jobs SET status = 'cancelled', error = 'cancelled by user', finished_at = ? WHERE id = ? AND status = 'pending' RETURNING *`,
  );
  const retry = db.prepare<[number, number], Row>(
    `UPDATE jobs SET status = 'pending', run_at = ?, max_attempts = max(max_attempts, attempts + 1), finished_at = NULL,
       result = NULL, error = NULL, progress = 0, progress_message = NULL, slot = NULL, cancel_requested_at = NULL, cancel_deadline = NULL,
       -- A retry on purpose gives a quarantined job a fresh count of worker crashes.
       errors = (SELECT json_group_array(json_set(value, '$.crashed', json('false'))) FROM json_each(errors))
     WHERE id = ? AND status IN ('failed', 'cancelled') RETURNING *`,
  );
  const prune = db.prepare<[number]>(
    `DELETE FROM jobs WHERE finished_at < ? AND status IN ('complete', 'failed', 'cancelled')`,
  );
  // A job a dead daemon left running goes back to pending with its attempt counted. That
  // includes a job handed to its worker ahead of its turn whose begin was not written yet:
  // the worker starts it on its own, so it may well have run; counting the attempt keeps
  // every attempt number to one execution at most.
  // Only jobs whose owner is not live: a running job of a live daemon run is its business.
  // One whose cancel was requested is ended cancelled instead (rescueCancelled, first).
  const NOT_LIVE = `status = 'running' AND (owner IS NULL OR owner NOT IN (SELECT value FROM json_each(?)))`;
  const rescueCancelled = db.prepare<[number, number, string]>(
    `UPDATE jobs SET status = 'cancelled', error = 'cancelled by user', finished_at = ?, slot = NULL, owner = NULL,
       errors = json_insert(errors, '$[#]', json_object('attempt', attempts, 'message',
         'interrupted: the daemon stopped while this attempt was running (its cancel was requested)', 'permanent', json('false'), 'at', ?))
     WHERE ${NOT_LIVE} AND ${CANCEL_ASKED}`,
  );
  const rescue = db.prepare<[number, string]>(
    `UPDATE jobs SET status = 'pending', slot = NULL, owner = NULL, max_attempts = max(max_attempts, attempts + 1),
       errors = json_insert(errors, '$[#]', json_object('attempt', attempts, 'message',
         CASE WHEN started_at IS NULL
           THEN 'interrupted: the daemon stopped while this attempt was handed to its worker (it may have begun)'
           ELSE 'interrupted: the daemon stopped while this attempt was running' END,
         'permanent', json('false'), 'at', ?))
     WHERE ${NOT_LIVE}`,
  );
  const rescueAll = db.transaction((now: number, live: string) => {
    const cancelled = rescueCancelled.run(now, now, live).changes;
    return { interrupted: rescue.run(now, live).changes, cancelled };
  });
  const requestCancel = db.transaction((id: number, graceMs: number, now: number): CancelAnswer | null => {
    const pending = cancelPending.get(now, id);
    if (pending) return { outcome: "cancelled", job: toRecord(pending) };
    const asked = askCancel.get(now, now + graceMs, id);
    const row = getOne.get(id);
    if (!row) return null;
    if (asked) return { outcome: "requested", job: toRecord(row), owner: asked.owner, deadline: asked.cancel_deadline };
    return { outcome: "ended", job: toRecord(row) };
  });
  // The earliest run_at among pending jobs (of types not excluded): a skip-scan over jobs_due,
  // which is ordered by priority first: one seek per distinct priority, then the first entry
  // of each. Cheaper than keeping an index on run_at alone up to date on every write.
  const earliestSql = (except: boolean) => `WITH RECURSIVE p(v) AS (
      SELECT (SELECT priority FROM jobs INDEXED BY jobs_due WHERE status = 'pending' ORDER BY priority DESC LIMIT 1)
      UNION ALL
      SELECT (SELECT priority FROM jobs INDEXED BY jobs_due WHERE status = 'pending' AND priority < p.v ORDER BY priority DESC LIMIT 1)
      FROM p WHERE p.v IS NOT NULL
    )
    SELECT min((SELECT run_at FROM jobs INDEXED BY jobs_due WHERE status = 'pending' AND priority = p.v
      ${except ? "AND type NOT IN (SELECT value FROM json_each(@except))" : ""} ORDER BY priority DESC, run_at LIMIT 1)) AS t
    FROM p WHERE p.v IS NOT NULL`;
  const nextDue = db.prepare<[], { t: number | null }>(earliestSql(false));
  // Variants for when some types are paused (json array of type names).
  const selectDueExcept = db
    .prepare<[number, string, number], DueRow>(
      `SELECT ${DUE_COLUMNS} FROM jobs INDEXED BY jobs_due WHERE status = 'pending' AND run_at <= ? AND type NOT IN (SELECT value FROM json_each(?))
     ORDER BY priority DESC, run_at, id LIMIT ?`,
    )
    .raw(true);
  const nextDueExcept = db.prepare<[{ except: string }], { t: number | null }>(earliestSql(true));
  // Stats' page: the finished jobs after (finished_at, id) in that order (the jobs_finished
  // index holds both), as arrays: id, finished_at, type, status, attempts, started_at, finished_at, run_at.
  const statsPage = db
    .prepare<[number, number, number, number], [number, number, string, JobStatus, number, number | null, number, number]>(
      `SELECT id, finished_at, type, status, attempts, started_at, finished_at, run_at FROM jobs INDEXED BY jobs_finished
         WHERE finished_at >= ? AND (finished_at, id) > (?, ?) ORDER BY finished_at, id LIMIT ?`,
    )
    .raw();
  const queueNow = db.prepare<[number], { pending: number; due: number; running: number }>(
    `SELECT (SELECT count(*) FROM jobs INDEXED BY jobs_due WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM jobs INDEXED BY jobs_due WHERE status = 'pending' AND run_at <= ?) AS due,
       (SELECT count(*) FROM jobs WHERE status = 'running') AS running`,
  );
  const ahead = db.prepare<[{ now: number; priority: number; runAt: number; id: number; except: string }], { n: number }>(
    `SELECT count(*) AS n FROM jobs INDEXED BY jobs_due WHERE status = 'pending' AND run_at <= @now
       AND type NOT IN (SELECT value FROM json_each(@except))
       AND (priority > @priority OR (priority = @priority AND (run_at < @runAt OR (run_at = @runAt AND id < @id))))`,
  );

  /** The claim (store/types.ts ClaimLimits): due jobs in order, within the budgets and budgetMs. */
  const claimDue = (c: ClaimLimits, owner: string, now: number): ClaimResult => {
    const since = performance.now();
    const claimed: JobRecord[] = [];
    if (c.limit <= 0) return { claimed, nextDueAt: null };
    const except = c.pausedTypes.length ? JSON.stringify(c.pausedTypes) : null;
    const earliestDue = () => (except === null ? nextDue.get()! : nextDueExcept.get({ except })!).t;
    // min(run_at) walks the run_at index: cheap, and it spares the ordered scan below
    // (which would step over every future job) when nothing is due.
    const earliest = earliestDue();
    if (earliest === null || earliest > now) return { claimed, nextDueAt: earliest };
    const left = new Map(Object.entries(c.budgets));
    // With a time budget the due jobs are read a page at a time (a job claimed is no longer
    // pending: the next read starts after it): a claim cut short by the budget has not read
    // rows it never takes (under load, most ticks' claims are cut short).
    const page = c.budgetMs === undefined ? c.limit : CLAIM_PAGE_ROWS;
    let taken = 0;
    let stopped = false;
    let ranOut = false;
    while (!stopped && !ranOut && taken < c.limit) {
      const want = Math.min(page, c.limit - taken);
      const due = except === null ? selectDue.all(now, want) : selectDueExcept.all(now, except, want);
      ranOut = due.length < want;
      for (const d of due) {
        if (!claimMore(claimed.length, performance.now() - since, c.budgetMs)) {
          stopped = true;
          break;
        }
        const type = d[1];
        const names = Object.hasOwn(c.draws, type) ? c.draws[type]! : c.otherTypes;
        if (names.some((n) => !((left.get(n) ?? 0) > 0))) {
          stopped = true;
          break;
        }
        for (const n of names) left.set(n, left.get(n)! - 1);
        taken++;
        if (claimOne.run(owner, d[0]).changes === 1) claimed.push(claimedRecord(d));
      }
    }
    return { claimed, nextDueAt: !stopped && ranOut ? earliestDue() : null };
  };
  const claim = db.transaction(claimDue);

  const tick = db.transaction((b: TickBatch): TickResult => {
    const inserted = b.inserts.map((j) => (j.uniqueKey !== null ? insertUnique({ ...j, uniqueKey: j.uniqueKey }, b.now) : { job: insert(j, b.now), created: true }));
    const owner = b.owner;
    const refused: RefusedWrite[] = [];
    for (const p of b.progress) {
      if (setProgress.run({ id: p.id, attempt: p.attempt, progress: p.progress, message: p.message, owner }).changes !== 1) refused.push({ write: "progress", id: p.id, attempt: p.attempt });
    }
    for (const c of b.checkpoints) {
      if (setState.run({ id: c.id, attempt: c.attempt, state: JSON.stringify(c.state), owner }).changes !== 1) refused.push({ write: "checkpoint", id: c.id, attempt: c.attempt });
    }
    if (b.logs.length) {
      for (const l of b.logs) {
        if (insertLog.run(l.id, l.attempt, l.at, l.message, l.id, l.attempt, owner).changes !== 1) refused.push({ write: "log", id: l.id, attempt: l.attempt });
      }
      for (const id of new Set(b.logs.map((l) => l.id))) trimLogs.run(id, id, MAX_LOG_LINES);
    }
    for (const g of b.begins) if (begin.run(g.at, g.slot, g.id, g.attempt, owner).changes !== 1) refused.push({ write: "begin", id: g.id, attempt: g.attempt });
    const finished: JobRecord[] = [];
    for (let f of b.finishes) {
      let resultText = "null";
      if (f.outcome === "complete") {
        let refused: string | null = null;
        try {
          resultText = JSON.stringify(f.result ?? null);
          // The worker refuses these already; this keeps any other way in from storing one.
          // Checked here, where the text exists, rather than serialising every result twice.
          // (A UTF-16 length of n is at most 3n bytes: short texts are not measured.)
          const bytes = resultText.length * 3 > MAX_RESULT_BYTES ? Buffer.byteLength(resultText) : 0;
          if (bytes > MAX_RESULT_BYTES) refused = resultTooLarge(bytes);
        } catch (err) {
          refused = `the job's result could not be stored: ${(err as Error).message}`;
        }
        // Never wedge the tick on one result: the job fails, the rest is written.
        if (refused !== null) f = { id: f.id, attempt: f.attempt, outcome: "failed", error: refused, permanent: true, ...(f.startedAt !== undefined ? { startedAt: f.startedAt } : {}) };
      }
      if (f.outcome === "complete") {
        if (complete.run(resultText, b.now, f.startedAt ?? null, f.id, f.attempt, owner).changes !== 1) {
          if (completeCancelled.run(resultText, b.now, f.startedAt ?? null, f.id, f.attempt, owner).changes === 1) finished.push(toRecord(getOne.get(f.id)!));
          else refused.push({ write: "finish", id: f.id, attempt: f.attempt });
          continue;
        }
        const r = f.running;
        // Exactly what the UPDATE above wrote over the running attempt.
        if (r && r.id === f.id && r.attempts === f.attempt) {
          // The result came through JSON already (the worker checks it is JSON): kept as is.
          finished.push({ ...r, status: "complete", result: f.result ?? null, progress: 100, error: null, slot: null, finishedAt: b.now, startedAt: r.startedAt ?? f.startedAt ?? null });
        } else finished.push(toRecord(getOne.get(f.id)!));
        continue;
      }
      const params: Record<string, unknown> = { id: f.id, attempt: f.attempt, owner, now: b.now, error: null, permanent: "false", crashed: "false", startedAt: f.startedAt ?? null };
      if (f.outcome === "cancelled") params.result = f.result === undefined ? null : storableResult(f.result);
      if ((f.outcome === "retry" || f.outcome === "failed") && f.crashed) params.crashed = "true";
      if (f.outcome === "retry") Object.assign(params, { error: f.error, runAt: f.runAt });
      if (f.outcome === "failed") Object.assign(params, { error: f.error, permanent: f.permanent ? "true" : "false" });
      if (f.outcome === "cancelled") params.error = f.error ?? "cancelled by user";
      if (finishStmts[f.outcome].run(params).changes === 1) finished.push(toRecord(getOne.get(f.id)!));
      else refused.push({ write: "finish", id: f.id, attempt: f.attempt });
    }
    const { claimed, nextDueAt } = b.claim ? claimDue(b.claim, owner, b.now) : { claimed: [], nextDueAt: null };
    return { inserted, finished, claimed, nextDueAt, refused };
  });

  return {
    async tick(batch) {
      return tick.immediate(batch);
    },
    async claim({ owner, now, ...limits }) {
      return claim.immediate(limits, owner, now);
    },
    async get(id) {
      const row = getOne.get(id);
      return row ? toRecord(row) : null;
    },
    async list(filter) {
      const where: string[] = [];
      const params: Record<string, unknown> = { limit: filter.limit ?? 50 };
      if (filter.status !== undefined) {
        where.push("status = @status");
        params.status = filter.status;
      }
      if (filter.type !== undefined) {
        where.push("type = @type");
        params.type = filter.type;
      }
      if (filter.beforeId !== undefined) {
        where.push("id < @beforeId");
        params.beforeId = filter.beforeId;
      }
      const sql = `SELECT ${SUMMARY_COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT @limit`;
      return db.prepare<[Record<string, unknown>], SummaryRow>(sql).all(params).map(toJobSummary);
    },
    async counts() {
      const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
      for (const r of counts.all()) out[r.status] = r.n;
      return out;
    },
    async runningFor(owner) {
      return runningFor.all(owner);
    },
    async cancelPending(id, now) {
      const row = cancelPending.get(now, id);
      return row ? toRecord(row) : null;
    },
    async requestCancel(id, graceMs, now) {
      return requestCancel.immediate(id, graceMs, now);
    },
    async retry(id, now) {
      try {
        const row = retry.get(now, id);
        return row ? toRecord(row) : null;
      } catch (err) {
        if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
          throw conflict(`job ${id} cannot be retried: another pending or running job holds its unique key`);
        }
        throw err;
      }
    },
    async prune(finishedBefore) {
      return prune.run(finishedBefore).changes;
    },
    async stats(since, now) {
      const byType = new Map<string, TypeTally>();
      // The cursor: the last row read (its finished_at, its id); ids start at 1.
      let after: [number, number] = [since, 0];
      for (;;) {
        const rows = statsPage.all(since, after[0], after[1], STATS_PAGE_ROWS);
        for (const [, , type, status, attempts, startedAt, finishedAt, runAt] of rows) {
          let t = byType.get(type);
          if (!t) byType.set(type, (t = { finished: 0, complete: 0, failed: 0, cancelled: 0, retried: 0, runs: [], latencies: [] }));
          t.finished++;
          if (status === "complete") t.complete++;
          else if (status === "failed") t.failed++;
          else if (status === "cancelled") t.cancelled++;
          t.retried += Math.max(attempts - 1, 0);
          if (startedAt !== null) {
            if (status === "complete") t.runs.push(finishedAt - startedAt);
            t.latencies.push(Math.max(startedAt - runAt, 0));
          }
        }
        if (rows.length < STATS_PAGE_ROWS) break;
        const last = rows[rows.length - 1]!;
        after = [last[1], last[0]];
        // A turn of the event loop between two pages (what waits, /health or a job's end, is served).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const types = [...byType.keys()].sort().map((type) => {
        const t = byType.get(type)!;
        const runs = Float64Array.from(t.runs).sort();
        const latencies = Float64Array.from(t.latencies).sort();
        const at = (values: Float64Array, q: number) => (values.length ? values[Math.min(values.length - 1, Math.floor(q * values.length))]! : null);
        const mean = runs.length ? runs.reduce((a, b) => a + b, 0) / runs.length : null;
        return {
          type,
          finished: t.finished,
          complete: t.complete,
          failed: t.failed,
          cancelled: t.cancelled,
          retried: t.retried,
          runMs: { mean: mean === null ? null : Math.round(mean * 10) / 10, p95: at(runs, 0.95) },
          startLatencyMs: { p50: at(latencies, 0.5), p95: at(latencies, 0.95), p99: at(latencies, 0.99) },
        };
      });
      const q = queueNow.get(now)!;
      return { types, ...q };
    },
    async logs(id, afterId) {
      return readLogs.all(id, afterId).map((r) => ({ id: r.id, jobId: r.job_id, attempt: r.attempt, at: new Date(r.at).toISOString(), message: r.message }));
    },
    async countAhead(job, now, excludeTypes) {
      return ahead.get({ now, priority: job.priority, runAt: job.runAt, id: job.id, except: JSON.stringify(excludeTypes) })!.n;
    },
    async rescue({ now, liveOwners }) {
      return rescueAll.immediate(now, JSON.stringify(liveOwners));
    },
  };
}
