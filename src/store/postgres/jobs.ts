// The job queue on PostgreSQL: the same JobStore as SQLite (store/sqlite/jobs.ts), for
// several daemons on one database. What differs is only how:
//
// - Claim: one call of jobs_claim (migration 002). Due pending jobs are locked in claim order
//   with FOR UPDATE SKIP LOCKED (another daemon's claim in flight is stepped over, never
//   waited for nor taken twice); the budget walk (ClaimLimits) runs as they are read; those
//   that fit become running for the owner. Its plans are pinned to indexes, whatever the
//   statistics say.
// - Fencing: every write of an attempt says `WHERE id AND status = 'running' AND attempts AND
//   owner` in the statement that applies it; under READ COMMITTED a row changed meanwhile is
//   re-checked against that condition after its lock is had, so a late write of a rescued or
//   requeued attempt matches nothing and is reported refused.
// - Batches: the writes of a tick of one kind go as one statement over unnest()ed arrays
//   (progress, checkpoints, logs, begins, completions, plain inserts): a tick costs a few
//   round trips whatever its size.
//
// Differences a caller can see (notes for SCALE-OUT.md):
// - Text PostgreSQL cannot hold: U+0000. In what a running attempt writes (an error, a progress
//   message, a log line) it is replaced by U+FFFD, so one handler's output never makes a whole
//   tick fail. In what an enqueue gives (a unique key) it is refused: the tick fails invalid.
// - nextDueAt may be at or before `now` when due jobs were locked by another daemon's claim at
//   that moment, or were enqueued by another daemon during this claim: "look again now".
// - Ids drawn by a transaction that rolled back are never handed out again (SQLite reuses
//   them): ids keep their order, with gaps.

import { newJobRecord, toJobSummary } from "../rows.js";
import pg from "pg";
import type { Json, JobStatus } from "../../protocol/types.js";
import { JOB_PREVIEW_CHARS, JOB_STATUSES } from "../../protocol/types.js";
import { MAX_RESULT_BYTES, resultTooLarge } from "../../protocol/routes.js";
import type { CancelAnswer, ClaimLimits, ClaimResult, Finish, JobRecord, JobStore, NewJob, RefusedWrite, TickBatch, TickResult } from "../types.js";
import { conflict } from "../../lib/errors.js";
import { inTransaction, longWrite, PRUNE_STATEMENT_MS, ts } from "./connect.js";
import { CONTROL_CHANNEL, type Wakeups } from "./wakeups.js";

/** A jobs row as pg returns it (timestamptz as epoch ms, json parsed: connect.ts). */
export interface JobRow {
  id: number;
  type: string;
  payload: Json;
  status: JobStatus;
  progress: number;
  progress_message: string | null;
  attempts: number;
  max_attempts: number;
  run_at: number;
  priority: number;
  unique_key: string | null;
  slot: number | null;
  result: Json | null;
  error: string | null;
  errors: JobRecord["errors"];
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  state: Json | null;
}

export const toJobRecord = (r: JobRow): JobRecord => ({
  id: r.id,
  type: r.type,
  payload: r.payload,
  status: r.status,
  progress: r.progress,
  progressMessage: r.progress_message,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  runAt: r.run_at,
  priority: r.priority,
  uniqueKey: r.unique_key,
  slot: r.slot,
  result: r.result,
  error: r.error,
  errors: r.errors,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  state: r.state,
});

/** Log lines kept per job; older ones are dropped (as on SQLite). */
export const MAX_LOG_LINES = 200;

/** A running attempt's text as PostgreSQL can hold it: U+0000 becomes U+FFFD. */
const holdable = (s: string): string => (s.includes("\0") ? s.replaceAll("\0", "\uFFFD") : s);
const holdableOrNull = (s: string | null): string | null => (s === null ? null : holdable(s));

// The columns of every job the store returns (owner is the store's own business).
const COLUMNS = `id, type, payload, status, progress, progress_message, attempts, max_attempts, run_at, priority, unique_key, slot,
  result, error, errors, created_at, started_at, finished_at, state`;

const FENCE = `j.status = 'running' AND j.attempts = u.attempt AND j.owner = $1`;
const LIVE = `status IN ('pending', 'running')`;

/** The claim: jobs_claim (migration 002) says what it does, and why it is a function. */
const CLAIM = `SELECT * FROM jobs_claim($1, $2, $3, $4::text[], $5::jsonb, $6::jsonb, $7::jsonb)`;
/**
 * The claim as a transaction of its own, committed without waiting for its WAL flush
 * (synchronous_commit off for this transaction only, whatever the durability): the claim
 * alone of a daemon's writes need not be durable when it returns. Saves one flush on the way
 * from a job's enqueue to its start on another node (a trivial commit here: 0.36–0.43 ms
 * with the flush, 0.10–0.22 ms without, p50; p90 2.9 ms against 0.2–0.5 ms on a loaded disk;
 * the woken node's claim tick, 2 daemons, load 1.6–2.5: p50 2.4–2.6 ms flushed, 1.8 ms not).
 * Why losing it is safe (docs/scale-out.md, "The claim is not flushed"):
 * - What the claim's commit wrote reaches the disk with the next flush of any commit after it
 *   (the WAL is one sequence), at the latest within 3 × wal_writer_delay: every later durable
 *   write of that attempt (its begin, progress, end) makes the claim durable first.
 * - It is lost only if the database server itself crashes before that. Then the job is pending
 *   again, its attempt not counted, and may be claimed again under the same attempt number,
 *   but never by the same owner: the crash cut the claiming node's control connection, so
 *   that node fenced itself and registers again under a new id before it claims anything
 *   (queue/node.ts), and every write of the lost attempt names the old owner and matches no
 *   row (FENCE). A crash with the flush kept would instead leave the attempt counted as
 *   interrupted; the attempt may have begun either way.
 * Only a claim alone: in a tick with other writes (inserts, ends) the commit is theirs and
 * keeps the store's durability.
 */
const CLAIM_UNFLUSHED = `SELECT c.* FROM jobs_claim($1, $2, $3, $4::text[], $5::jsonb, $6::jsonb, $7::jsonb) c,
  set_config('synchronous_commit', 'off', true)`;

interface ClaimRow extends JobRow {
  next_due: number | null;
}

type Queryable = pg.Pool | pg.ClientBase;

/** `alone`: the claim is its transaction's only statement (not a tick's with other writes): its commit is not flushed. */
async function claimDue(q: Queryable, c: ClaimLimits, owner: string, now: number, alone: boolean): Promise<ClaimResult> {
  if (c.limit <= 0) return { claimed: [], nextDueAt: null };
  const rows = (
    await q.query<ClaimRow>({
      name: alone ? "tw_jobs_claim_unflushed" : "tw_jobs_claim",
      text: alone ? CLAIM_UNFLUSHED : CLAIM,
      values: [owner, ts(now), c.limit, c.pausedTypes, JSON.stringify(c.budgets), JSON.stringify(c.draws), JSON.stringify(c.otherTypes)],
    })
  ).rows;
  // In claim order (the function returns them in none).
  const claimed = rows
    .filter((r) => r.id !== null)
    .sort((a, b) => b.priority - a.priority || a.run_at - b.run_at || a.id - b.id)
    .map(toJobRecord);
  return { claimed, nextDueAt: rows.find((r) => r.id === null)?.next_due ?? null };
}

const INSERT_COLUMNS = `INSERT INTO jobs (type, payload, status, max_attempts, run_at, priority, unique_key, created_at)`;


/**
 * Jobs without a unique key, in one statement. Identity values are drawn row by row in the
 * SELECT's order (ORDER BY n), so the ids returned, sorted, are the jobs' in input order.
 */
async function insertPlain(c: Queryable, jobs: NewJob[], now: number): Promise<JobRecord[]> {
  const r = await c.query<{ id: number }>({
    name: "tw_jobs_insert",
    text: `${INSERT_COLUMNS}
      SELECT u.type, u.payload::json, 'pending', u.max_attempts, u.run_at, u.priority, NULL, $1
        FROM unnest($2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::int[]) WITH ORDINALITY AS u (type, payload, max_attempts, run_at, priority, n)
       ORDER BY u.n
      RETURNING id`,
    values: [ts(now), jobs.map((j) => j.type), jobs.map((j) => JSON.stringify(j.payload)), jobs.map((j) => j.maxAttempts), jobs.map((j) => ts(j.runAt)), jobs.map((j) => j.priority)],
  });
  const ids = r.rows.map((x) => x.id).sort((a, b) => a - b);
  return jobs.map((j, i) => newJobRecord(ids[i]!, j, now));
}

/** How often an insert under a unique key tries again when the live job it met ended before it could be read. */
const UNIQUE_INSERT_TRIES = 3;

/**
 * A job with a unique key is inserted only if no live (pending or running) job holds the key:
 * the unique partial index jobs_unique_live decides (ON CONFLICT waits for a racing insert of
 * the same key to commit or roll back), so two daemons racing with one key cannot both
 * insert. Otherwise the live job is returned.
 */
async function insertUnique(c: Queryable, job: NewJob & { uniqueKey: string }, now: number): Promise<{ job: JobRecord; created: boolean }> {
  for (let i = 0; i < UNIQUE_INSERT_TRIES; i++) {
    const r = await c.query<{ id: number }>({
      name: "tw_jobs_insert_unique",
      text: `${INSERT_COLUMNS} VALUES ($1, $2::json, 'pending', $3, $4, $5, $6, $7)
        ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND ${LIVE} DO NOTHING RETURNING id`,
      values: [job.type, JSON.stringify(job.payload), job.maxAttempts, ts(job.runAt), job.priority, job.uniqueKey, ts(now)],
    });
    if (r.rows[0]) return { job: newJobRecord(r.rows[0].id, job, now), created: true };
    // A statement of its own, with a fresh snapshot: it sees the job the insert met.
    const live = (await c.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE unique_key = $1 AND ${LIVE}`, [job.uniqueKey])).rows[0];
    if (live) return { job: toJobRecord(live), created: false };
  }
  throw new Error(`the job under unique key ${JSON.stringify(job.uniqueKey)} was neither inserted nor found live`);
}

/** The inserts of a tick, in order: runs of plain jobs in one statement each, keyed ones one by one (ids follow the input order). */
async function insertAll(c: Queryable, jobs: NewJob[], now: number): Promise<{ job: JobRecord; created: boolean }[]> {
  const out: { job: JobRecord; created: boolean }[] = [];
  for (let i = 0; i < jobs.length; ) {
    const j = jobs[i]!;
    if (j.uniqueKey !== null) {
      out.push(await insertUnique(c, { ...j, uniqueKey: j.uniqueKey }, now));
      i++;
      continue;
    }
    let end = i;
    while (end < jobs.length && jobs[end]!.uniqueKey === null) end++;
    for (const job of await insertPlain(c, jobs.slice(i, end), now)) out.push({ job, created: true });
    i = end;
  }
  return out;
}

/**
 * A fenced write of one kind for many attempts, in one statement: `sql` updates `jobs j` from
 * `u` (unnest of the arrays, with columns id and attempt) under FENCE and returns j.id and
 * j.attempts. Writes of one (id, attempt) beyond the last are dropped first (the last wins, as
 * they would one after the other). Every write whose attempt matched nothing is refused.
 */
async function fencedUpdate<W extends { id: number; attempt: number }>(
  c: Queryable,
  kind: RefusedWrite["write"],
  writes: W[],
  owner: string,
  sql: string,
  columns: (ws: W[]) => unknown[],
  refused: RefusedWrite[],
): Promise<void> {
  if (!writes.length) return;
  const last = new Map<string, W>();
  for (const w of writes) last.set(`${w.id}:${w.attempt}`, w);
  const ws = [...last.values()];
  const r = await c.query<{ id: number; attempts: number }>({ name: `tw_jobs_${kind}`, text: sql, values: [owner, ws.map((w) => w.id), ws.map((w) => w.attempt), ...columns(ws)] });
  const applied = new Set(r.rows.map((x) => `${x.id}:${x.attempts}`));
  for (const w of writes) if (!applied.has(`${w.id}:${w.attempt}`)) refused.push({ write: kind, id: w.id, attempt: w.attempt });
}

const UNNEST_FENCED = (cols: string, types: string) => `unnest($2::bigint[], $3::int[], ${types}) AS u (id, attempt, ${cols})`;

const SET_PROGRESS = `UPDATE jobs j SET progress = u.progress, progress_message = u.message
  FROM ${UNNEST_FENCED("progress, message", "$4::int[], $5::text[]")}
 WHERE j.id = u.id AND ${FENCE} RETURNING j.id, j.attempts`;
const SET_STATE = `UPDATE jobs j SET state = u.state::json
  FROM ${UNNEST_FENCED("state", "$4::text[]")}
 WHERE j.id = u.id AND ${FENCE} RETURNING j.id, j.attempts`;
// Slot and started_at are the owner's to write when the job's turn begins.
const BEGIN = `UPDATE jobs j SET started_at = coalesce(j.started_at, u.at), slot = u.slot
  FROM ${UNNEST_FENCED("at, slot", "$4::timestamptz[], $5::int[]")}
 WHERE j.id = u.id AND ${FENCE} RETURNING j.id, j.attempts`;
// A log line is kept only while its attempt runs for this owner (a late one is refused);
// identity values follow the ORDER BY, so a job's lines keep their order.
const INSERT_LOGS = `INSERT INTO job_logs (job_id, attempt, at, message)
  SELECT u.id, u.attempt, u.at, u.message
    FROM unnest($2::bigint[], $3::int[], $4::timestamptz[], $5::text[]) WITH ORDINALITY AS u (id, attempt, at, message, n)
   WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = u.id AND ${FENCE})
   ORDER BY u.n
  RETURNING job_id AS id, attempt AS attempts`;
const TRIM_LOGS = `DELETE FROM job_logs d
  USING (SELECT k.id, (SELECT id FROM job_logs WHERE job_id = k.id ORDER BY id DESC OFFSET ${MAX_LOG_LINES} LIMIT 1) AS cut
           FROM unnest($1::bigint[]) AS k (id)) t
 WHERE d.job_id = t.id AND d.id <= t.cut`;
// An attempt whose cancel was requested (migration 006) ends cancelled, whatever it returned:
// the result is kept, the status is not complete (SCALE-OUT.md §9.4: cancel wins over a late
// success). Every finish below says so too.
const CANCEL_ASKED = `cancel_requested_at IS NOT NULL`;
const COMPLETE = `UPDATE jobs j SET status = CASE WHEN j.${CANCEL_ASKED} THEN 'cancelled' ELSE 'complete' END, result = u.result::json,
       progress = CASE WHEN j.${CANCEL_ASKED} THEN j.progress ELSE 100 END,
       error = CASE WHEN j.${CANCEL_ASKED} THEN 'cancelled by user' END, slot = NULL, owner = NULL,
       finished_at = $4, started_at = coalesce(j.started_at, u.started_at)
  FROM unnest($2::bigint[], $3::int[], $5::text[], $6::timestamptz[]) AS u (id, attempt, result, started_at)
 WHERE j.id = u.id AND ${FENCE} RETURNING j.id, j.status`;

// Appends one {attempt, message, permanent, at, crashed} object to the errors array:
// $4 message, $5 permanent, $6 at (epoch ms), $7 crashed.
const APPEND_ERROR = `errors = json_append(errors, json_build_object('attempt', attempts, 'message', $4::text, 'permanent', $5::boolean, 'at', $6::float8, 'crashed', $7::boolean))`;
const ONE_FENCE = `WHERE id = $2 AND status = 'running' AND attempts = $3 AND owner = $1`;
type Other = Exclude<Finish, { outcome: "complete" }>;
/**
 * The finishes other than complete, one statement each: $1 owner, $2 id, $3 attempt, then
 * what `values` gives ($4 on).
 */
const FINISH: { [O in Other["outcome"]]: { sql: string; values: (f: Extract<Other, { outcome: O }>, now: number, startedAt: Date | null) => unknown[] } } = {
  retry: {
    sql: `UPDATE jobs SET status = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled' ELSE 'pending' END, error = $4, ${APPEND_ERROR}, slot = NULL, owner = NULL,
            run_at = CASE WHEN ${CANCEL_ASKED} THEN run_at ELSE $8 END, finished_at = CASE WHEN ${CANCEL_ASKED} THEN $10::timestamptz END,
            started_at = coalesce(started_at, $9) ${ONE_FENCE} RETURNING ${COLUMNS}`,
    values: (f, now, startedAt) => [holdable(f.error), false, now, f.crashed === true, ts(f.runAt), startedAt, ts(now)],
  },
  failed: {
    sql: `UPDATE jobs SET status = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled' ELSE 'failed' END, error = $4, ${APPEND_ERROR}, slot = NULL, owner = NULL, finished_at = $8,
            started_at = coalesce(started_at, $9) ${ONE_FENCE} RETURNING ${COLUMNS}`,
    values: (f, now, startedAt) => [holdable(f.error), f.permanent, now, f.crashed === true, ts(now), startedAt],
  },
  cancelled: {
    sql: `UPDATE jobs SET status = 'cancelled', error = $4, slot = NULL, owner = NULL, finished_at = $5,
            started_at = coalesce(started_at, $6), result = coalesce($7::json, result) ${ONE_FENCE} RETURNING ${COLUMNS}`,
    values: (f, now, startedAt) => [holdable(f.error ?? "cancelled by user"), ts(now), startedAt, f.result === undefined ? null : cancelledResult(f.result)],
  },
  requeue: {
    sql: `UPDATE jobs SET status = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled' ELSE 'pending' END,
            attempts = CASE WHEN ${CANCEL_ASKED} THEN attempts ELSE attempts - 1 END,
            error = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled by user' ELSE error END,
            finished_at = CASE WHEN ${CANCEL_ASKED} THEN $4::timestamptz END,
            slot = NULL, owner = NULL, started_at = CASE WHEN ${CANCEL_ASKED} THEN started_at END ${ONE_FENCE} RETURNING ${COLUMNS}`,
    values: (_f, now) => [ts(now)],
  },
};

/** The text of a cancelled attempt's result, or null when it cannot be stored (too large: the job is cancelled all the same). */
function cancelledResult(result: Json): string | null {
  const t = resultText(result);
  return "text" in t ? t.text : null;
}

/** The stored text of a complete's result, or why it cannot be stored (then the attempt fails permanently). */
function resultText(result: Json | undefined): { text: string } | { refused: string } {
  try {
    const text = JSON.stringify(result ?? null);
    // The worker refuses these already; this keeps any other way in from storing one.
    // (A UTF-16 length of n is at most 3n bytes: short texts are not measured.)
    const bytes = text.length * 3 > MAX_RESULT_BYTES ? Buffer.byteLength(text) : 0;
    if (bytes > MAX_RESULT_BYTES) return { refused: resultTooLarge(bytes) };
    return { text };
  } catch (err) {
    return { refused: `the job's result could not be stored: ${(err as Error).message}` };
  }
}

type Complete = Extract<Finish, { outcome: "complete" }>;

/** Completions in one statement; returns the stored jobs of those applied (the others were refused). */
async function completeAll(c: Queryable, fs: { f: Complete; text: string }[], owner: string, now: number): Promise<Map<number, JobRecord>> {
  const out = new Map<number, JobRecord>();
  if (!fs.length) return out;
  const r = await c.query<{ id: number; status: JobStatus }>({
    name: "tw_jobs_complete",
    text: COMPLETE,
    values: [owner, fs.map((x) => x.f.id), fs.map((x) => x.f.attempt), ts(now), fs.map((x) => x.text), fs.map((x) => (x.f.startedAt === undefined ? null : ts(x.f.startedAt)))],
  });
  const applied = new Map(r.rows.map((x) => [x.id, x.status]));
  const readBack: number[] = [];
  for (const { f } of fs) {
    const status = applied.get(f.id);
    if (status === undefined) continue;
    const run = f.running;
    // Exactly what the UPDATE wrote over the running attempt (a cancelled one is read back).
    if (run && knowsRunning(f) && status === "complete") {
      out.set(f.id, { ...run, status: "complete", result: f.result ?? null, progress: 100, error: null, slot: null, finishedAt: now, startedAt: run.startedAt ?? f.startedAt ?? null });
    } else readBack.push(f.id);
  }
  if (readBack.length) {
    for (const row of (await c.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE id = ANY ($1::bigint[])`, [readBack])).rows) out.set(row.id, toJobRecord(row));
  }
  return out;
}

async function finishOne(c: Queryable, f: Other, owner: string, now: number): Promise<JobRecord | null> {
  const stmt = FINISH[f.outcome] as { sql: string; values: (f: Other, now: number, startedAt: Date | null) => unknown[] };
  const values = [owner, f.id, f.attempt, ...stmt.values(f, now, f.startedAt === undefined ? null : ts(f.startedAt))];
  const row = (await c.query<JobRow>({ name: `tw_jobs_finish_${f.outcome}`, text: stmt.sql, values })).rows[0];
  return row ? toJobRecord(row) : null;
}

/** A tick's finish, ready to write: a complete carries its result's text. */
type Prepared = { f: Complete; text: string } | { f: Other };

/** A complete whose result cannot be stored fails instead (never wedge the tick on one result). */
function prepareFinishes(finishes: Finish[]): Prepared[] {
  return finishes.map((f): Prepared => {
    if (f.outcome !== "complete") return { f };
    const t = resultText(f.result);
    if ("text" in t) return { f, text: t.text };
    return { f: { id: f.id, attempt: f.attempt, outcome: "failed", error: t.refused, permanent: true, ...(f.startedAt !== undefined ? { startedAt: f.startedAt } : {}) } };
  });
}

const isComplete = (p: Prepared): p is { f: Complete; text: string } => p.f.outcome === "complete";
/** A complete whose stored job is built from the running attempt it gives (no read back). */
const knowsRunning = (f: Complete) => f.running !== undefined && f.running.id === f.id && f.running.attempts === f.attempt;
/** One job finished twice in one batch (rare; the engine finishes an attempt once). */
const repeats = (ps: Prepared[]) => new Set(ps.map((p) => p.f.id)).size !== ps.length;

/** How many statements finishAll makes. */
function finishStatements(ps: Prepared[]): number {
  if (repeats(ps)) return ps.length + ps.filter((p) => isComplete(p) && !knowsRunning(p.f)).length;
  const completes = ps.filter(isComplete);
  return (completes.length ? 1 : 0) + (completes.some((p) => !knowsRunning(p.f)) ? 1 : 0) + (ps.length - completes.length);
}

/** The finishes of a tick, applied as they would be one after another: the stored jobs, and the refusals, in input order. */
async function finishAll(c: Queryable, ps: Prepared[], owner: string, now: number, refused: RefusedWrite[]): Promise<JobRecord[]> {
  const finished: JobRecord[] = [];
  const settle = (p: Prepared, stored: JobRecord | null | undefined) => {
    if (stored) finished.push(stored);
    else refused.push({ write: "finish", id: p.f.id, attempt: p.f.attempt });
  };
  // A job finished twice: one finish after the other, so that the second is refused as it
  // would be.
  if (repeats(ps)) {
    for (const p of ps) settle(p, isComplete(p) ? (await completeAll(c, [p], owner, now)).get(p.f.id) : await finishOne(c, p.f, owner, now));
    return finished;
  }
  const done = await completeAll(c, ps.filter(isComplete), owner, now);
  for (const p of ps) settle(p, isComplete(p) ? done.get(p.f.id) : await finishOne(c, p.f, owner, now));
  return finished;
}

interface SummaryRow extends Omit<JobRow, "payload" | "result" | "errors" | "state"> {
  payload_bytes: number;
  payload_preview: string;
  result_bytes: number | null;
  result_preview: string | null;
}

// What a list shows: sizes and the start of payload and result, never their whole text.
const SUMMARY_COLUMNS = `id, type, status, progress, progress_message, attempts, max_attempts, run_at, priority, unique_key, slot,
  created_at, started_at, finished_at,
  CASE WHEN length(error) > ${JOB_PREVIEW_CHARS} THEN substr(error, 1, ${JOB_PREVIEW_CHARS - 1}) || '…' ELSE error END AS error,
  octet_length(payload::text) AS payload_bytes, substr(payload::text, 1, ${JOB_PREVIEW_CHARS}) AS payload_preview,
  octet_length(result::text) AS result_bytes, substr(result::text, 1, ${JOB_PREVIEW_CHARS}) AS result_preview`;


/**
 * Claim after the inserts: a tick that stores new jobs and also claims commits its writes
 * first, then sends its claim as a statement alone (committed unflushed, CLAIM_UNFLUSHED) and
 * the NOTIFY telling other daemons of the new jobs right behind it, as soon as they are
 * stored. In
 * one transaction the new jobs waited for the claim's statement (its server time and round
 * trip) before anyone could see them, which is the path of a job enqueued on a busy node and
 * started on another. It also takes fewer round trips: an insert and a claim each alone are
 * two, BEGIN, insert, claim, COMMIT four, with one flush either way. Measured with `node
 * bench/scale-out.mjs --only teamwork --nodes 1,2 --latency 200 --skip-failover` (see the
 * commit). A tick without new jobs (a drain: ends and claims) keeps one transaction.
 */
export function claimAfterInserts(b: Pick<TickBatch, "inserts" | "claim">): boolean {
  return b.inserts.length > 0 && b.claim !== null && b.claim.limit > 0;
}

/** A claim that failed after its tick's writes committed is tried again this much later. */
export const CLAIM_RETRY_MS = 1000;

/** How many statements a tick takes at least (2 standing for "more than one"). */
function statementsOf(b: TickBatch, finishes: Prepared[]): number {
  let n = 0;
  for (let i = 0; i < b.inserts.length; i++) {
    if (b.inserts[i]!.uniqueKey !== null) n += 2;
    else if (i === 0 || b.inserts[i - 1]!.uniqueKey !== null) n++;
  }
  n += (b.progress.length ? 1 : 0) + (b.checkpoints.length ? 1 : 0) + (b.logs.length ? 2 : 0) + (b.begins.length ? 1 : 0);
  n += finishStatements(finishes);
  if (b.claim && b.claim.limit > 0) n++;
  return n;
}

/**
 * What rescue writes over a running job whose owner is gone (a dead daemon run or node):
 * pending again, its attempt counted as interrupted (and one more allowed: an interruption is
 * not the job's failure), those handed to a worker ahead of their turn too (they may have
 * begun); one whose cancel was requested is ended cancelled instead, never run again. `at`
 * is the parameter with the time (epoch ms). Shared by rescue and nodes.ts.
 */
export const RESCUED = (at: string) => `status = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled' ELSE 'pending' END,
  finished_at = CASE WHEN ${CANCEL_ASKED} THEN to_timestamp(${at}::float8 / 1000) END,
  error = CASE WHEN ${CANCEL_ASKED} THEN 'cancelled by user' ELSE error END,
  slot = NULL, owner = NULL, max_attempts = greatest(max_attempts, attempts + 1),
  errors = json_append(errors, json_build_object('attempt', attempts, 'message',
    CASE WHEN started_at IS NULL
      THEN 'interrupted: the daemon stopped while this attempt was handed to its worker (it may have begun)'
      ELSE 'interrupted: the daemon stopped while this attempt was running' END,
    'permanent', false, 'at', ${at}::float8))`;

/** Milliseconds between two timestamptz expressions, as a double. */
const msBetween = (a: string, b: string) => `(extract(epoch FROM (${a} - ${b})) * 1000)::float8`;

/**
 * A cancel request (JobStore.requestCancel), one statement: a pending job is cancelled; a
 * running one gets the request and its deadline on the database's clock (a second request
 * keeps the first's), and its node is told on tw_control in the same statement (rare: the
 * commit lock a NOTIFY takes does not matter here), only if the request was recorded.
 * $1 id, $2 grace (ms), $3 now (a pending job's finished_at).
 */
const REQUEST_CANCEL = (notify: boolean) => `WITH c AS (
  UPDATE jobs SET
     cancel_requested_at = CASE WHEN status = 'running' THEN coalesce(cancel_requested_at, now()) END,
     cancel_deadline = CASE WHEN status = 'running' THEN coalesce(cancel_deadline, now() + make_interval(secs => $2::float8 / 1000)) END,
     status = CASE WHEN status = 'running' THEN status ELSE 'cancelled' END,
     error = CASE WHEN status = 'running' THEN error ELSE 'cancelled by user' END,
     finished_at = CASE WHEN status = 'running' THEN finished_at ELSE $3::timestamptz END
   WHERE id = $1 AND status IN ('pending', 'running')
  RETURNING ${COLUMNS}, owner, cancel_deadline,
            greatest(0, extract(epoch FROM cancel_deadline - now()) * 1000)::float8 AS grace_left_ms)
SELECT c.*${
  notify
    ? `, CASE WHEN c.status = 'running' THEN pg_notify('${CONTROL_CHANNEL}',
        json_build_object('cancel', c.id, 'node', c.owner, 'attempt', c.attempts, 'graceLeftMs', c.grace_left_ms)::text) END AS told`
    : ""
} FROM c`;

interface CancelRow extends JobRow {
  owner: string | null;
  cancel_deadline: number | null;
}

export function pgJobs(pool: pg.Pool, wakeups?: Wakeups): JobStore {
  const claimable = () => wakeups?.jobsClaimable();
async function retryJob(id: number, now: number): Promise<JobRecord | null> {
    try {
      return await inTransaction(pool, async (c) => {
        const cur = (await c.query<{ errors: JobRecord["errors"] }>(`SELECT errors FROM jobs WHERE id = $1 AND status IN ('failed', 'cancelled') FOR UPDATE`, [id])).rows[0];
        if (!cur) return null;
        // A retry on purpose gives a quarantined job a fresh count of worker crashes (each
        // error keeps its keys in order; crashed is set in place or added last).
        const errors = cur.errors.map((e) => ({ ...e, crashed: false }));
        const row = (
          await c.query<JobRow>(
            `UPDATE jobs SET status = 'pending', run_at = $2, max_attempts = greatest(max_attempts, attempts + 1), finished_at = NULL,
               result = NULL, error = NULL, progress = 0, progress_message = NULL, slot = NULL, errors = $3::json,
               cancel_requested_at = NULL, cancel_deadline = NULL
             WHERE id = $1 RETURNING ${COLUMNS}`,
            [id, ts(now), JSON.stringify(errors)],
          )
        ).rows[0]!;
        return toJobRecord(row);
      });
    } catch (err) {
      if (err instanceof pg.DatabaseError && err.code === "23505" && err.constraint === "jobs_unique_live") {
        throw conflict(`job ${id} cannot be retried: another pending or running job holds its unique key`);
      }
      throw err;
    }
  }
  return {
    async tick(b: TickBatch): Promise<TickResult> {
      const finishes = prepareFinishes(b.finishes);
      // A tick that is one statement is atomic on its own: no BEGIN and COMMIT (two round
      // trips of three) around it.
      const statements = statementsOf(b, finishes);
      // New jobs first (claimAfterInserts): the claim is left out of the writes and sent alone
      // once they are committed.
      const split = claimAfterInserts(b);
      const write = async (c: Queryable): Promise<TickResult> => {
        const inserted = await insertAll(c, b.inserts, b.now);
        const owner = b.owner;
        const refused: RefusedWrite[] = [];
        await fencedUpdate(c, "progress", b.progress, owner, SET_PROGRESS, (ws) => [ws.map((w) => w.progress), ws.map((w) => holdableOrNull(w.message))], refused);
        await fencedUpdate(c, "checkpoint", b.checkpoints, owner, SET_STATE, (ws) => [ws.map((w) => JSON.stringify(w.state ?? null))], refused);
        if (b.logs.length) {
          // Every line is kept (no last-wins here): the fence is asked per line.
          const r = await c.query<{ id: number; attempts: number }>({
            name: "tw_jobs_log",
            text: INSERT_LOGS,
            values: [owner, b.logs.map((l) => l.id), b.logs.map((l) => l.attempt), b.logs.map((l) => ts(l.at)), b.logs.map((l) => holdable(l.message))],
          });
          const applied = new Set(r.rows.map((x) => `${x.id}:${x.attempts}`));
          for (const l of b.logs) if (!applied.has(`${l.id}:${l.attempt}`)) refused.push({ write: "log", id: l.id, attempt: l.attempt });
          if (r.rows.length) await c.query({ name: "tw_jobs_trim_logs", text: TRIM_LOGS, values: [[...new Set(r.rows.map((x) => x.id))]] });
        }
        await fencedUpdate(c, "begin", b.begins, owner, BEGIN, (ws) => [ws.map((w) => ts(w.at)), ws.map((w) => w.slot)], refused);
        const finished = await finishAll(c, finishes, owner, b.now, refused);
        const { claimed, nextDueAt } = b.claim && !split ? await claimDue(c, b.claim, owner, b.now, statements === 1) : { claimed: [], nextDueAt: null };
        return { inserted, finished, claimed, nextDueAt, refused };
      };
      const writes = split ? statements - 1 : statements;
      const result = await (writes <= 1 ? write(pool) : inTransaction(pool, write));
      // Committed: other daemons may claim what it made pending (new jobs, retries, requeues).
      const tell = result.inserted.some((i) => i.created) || result.finished.some((j) => j.status === "pending");
      if (!split) {
        if (tell) claimable();
        return result;
      }
      // The claim is sent first and the NOTIFY at once after it, not after its answer: this
      // daemon claims its new jobs ahead of the others (they must hear, wake and claim), as
      // when both were one transaction, and the others hear of what it leaves without waiting.
      const claiming = claimDue(pool, b.claim!, b.owner, b.now, true);
      if (tell) claimable();
      try {
        Object.assign(result, await claiming);
      } catch (err) {
        // The writes are committed and must be answered as such: the claim is tried again
        // by the next tick (within CLAIM_RETRY_MS), and its failure reported beside them.
        result.nextDueAt = b.now + CLAIM_RETRY_MS;
        result.claimError = err instanceof Error ? err : new Error(String(err));
      }
      return result;
    },
    async claim({ owner, now, ...limits }) {
      // One statement: atomic on its own, no transaction to open.
      return claimDue(pool, limits, owner, now, true);
    },
    async get(id) {
      const row = (await pool.query<JobRow>({ name: "tw_jobs_get", text: `SELECT ${COLUMNS} FROM jobs WHERE id = $1`, values: [id] })).rows[0];
      return row ? toJobRecord(row) : null;
    },
    async list(filter) {
      const where: string[] = [];
      const values: unknown[] = [];
      const param = (v: unknown) => {
        values.push(v);
        return `$${values.length}`;
      };
      if (filter.status !== undefined) where.push(`status = ${param(filter.status)}`);
      if (filter.type !== undefined) where.push(`type = ${param(filter.type)}`);
      if (filter.beforeId !== undefined) where.push(`id < ${param(filter.beforeId)}`);
      const sql = `SELECT ${SUMMARY_COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ${param(filter.limit ?? 50)}`;
      return (await pool.query<SummaryRow>(sql, values)).rows.map(toJobSummary);
    },
    async counts() {
      const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
      for (const r of (await pool.query<{ status: JobStatus; n: number }>(`SELECT status, count(*) AS n FROM jobs GROUP BY status`)).rows) out[r.status] = r.n;
      return out;
    },
    async runningFor(owner) {
      return (await pool.query<{ id: number; attempt: number }>({ name: "tw_jobs_running_for", text: `SELECT id, attempts AS attempt FROM jobs WHERE status = 'running' AND owner = $1 ORDER BY id`, values: [owner] })).rows;
    },
    async cancelPending(id, now) {
      const row = (
        await pool.query<JobRow>(`UPDATE jobs SET status = 'cancelled', error = 'cancelled by user', finished_at = $1 WHERE id = $2 AND status = 'pending' RETURNING ${COLUMNS}`, [ts(now), id])
      ).rows[0];
      return row ? toJobRecord(row) : null;
    },
    async requestCancel(id, graceMs, now): Promise<CancelAnswer | null> {
      const r = await pool.query<CancelRow>({ name: `tw_jobs_request_cancel${wakeups?.enabled === false ? "_quiet" : ""}`, text: REQUEST_CANCEL(wakeups?.enabled !== false), values: [id, graceMs, ts(now)] });
      const row = r.rows[0];
      if (row) {
        const job = toJobRecord(row);
        if (row.status === "running") return { outcome: "requested", job, owner: row.owner, deadline: row.cancel_deadline! };
        return { outcome: "cancelled", job };
      }
      const ended = (await pool.query<JobRow>({ name: "tw_jobs_get", text: `SELECT ${COLUMNS} FROM jobs WHERE id = $1`, values: [id] })).rows[0];
      return ended ? { outcome: "ended", job: toJobRecord(ended) } : null;
    },
    async retry(id, now) {
      const job = await retryJob(id, now);
      if (job) claimable();
      return job;
    },
    async prune(finishedBefore) {
      // The job's log lines go with it (ON DELETE CASCADE).
      // Allowed longer than a statement's usual deadline: a busy queue ages out many rows at once.
      return (await longWrite(pool, PRUNE_STATEMENT_MS, { text: `DELETE FROM jobs WHERE finished_at < $1 AND status IN ('complete', 'failed', 'cancelled')`, values: [ts(finishedBefore)] })).rowCount ?? 0;
    },
    async stats(since, now) {
      const rows = (
        await pool.query<{ type: string; finished: number; complete: number; failed: number; cancelled: number; retried: number; mean: number | null }>(
          `SELECT type, count(*) AS finished, count(*) FILTER (WHERE status = 'complete') AS complete,
             count(*) FILTER (WHERE status = 'failed') AS failed, count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
             coalesce(sum(greatest(attempts - 1, 0)), 0) AS retried,
             avg(CASE WHEN status = 'complete' THEN ${msBetween("finished_at", "started_at")} END) AS mean
           FROM jobs WHERE finished_at >= $1 GROUP BY type ORDER BY type COLLATE "C"`,
          [ts(since)],
        )
      ).rows;
      const quantiles = async (sql: string, type: string, qs: number[]) => {
        const values = (await pool.query<{ v: number }>(sql, [type, ts(since)])).rows.map((r) => r.v);
        return qs.map((q) => (values.length ? values[Math.min(values.length - 1, Math.floor(q * values.length))]! : null));
      };
      const types = [];
      for (const r of rows) {
        const [p95run] = await quantiles(
          `SELECT ${msBetween("finished_at", "started_at")} AS v FROM jobs WHERE type = $1 AND finished_at >= $2 AND status = 'complete' AND started_at IS NOT NULL ORDER BY v`,
          r.type,
          [0.95],
        );
        const [p50, p95, p99] = await quantiles(
          `SELECT greatest(${msBetween("started_at", "run_at")}, 0) AS v FROM jobs WHERE type = $1 AND finished_at >= $2 AND started_at IS NOT NULL ORDER BY v`,
          r.type,
          [0.5, 0.95, 0.99],
        );
        types.push({
          type: r.type,
          finished: r.finished,
          complete: r.complete,
          failed: r.failed,
          cancelled: r.cancelled,
          retried: r.retried,
          runMs: { mean: r.mean === null ? null : Math.round(r.mean * 10) / 10, p95: p95run ?? null },
          startLatencyMs: { p50: p50 ?? null, p95: p95 ?? null, p99: p99 ?? null },
        });
      }
      const q = (
        await pool.query<{ pending: number; due: number; running: number }>(
          `SELECT (SELECT count(*) FROM jobs WHERE status = 'pending') AS pending,
             (SELECT count(*) FROM jobs WHERE status = 'pending' AND run_at <= $1) AS due,
             (SELECT count(*) FROM jobs WHERE status = 'running') AS running`,
          [ts(now)],
        )
      ).rows[0]!;
      return { types, ...q };
    },
    async logs(id, afterId) {
      const r = await pool.query<{ id: number; job_id: number; attempt: number; at: number; message: string }>(
        `SELECT id, job_id, attempt, at, message FROM job_logs WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT 1000`,
        [id, afterId],
      );
      return r.rows.map((l) => ({ id: l.id, jobId: l.job_id, attempt: l.attempt, at: new Date(l.at).toISOString(), message: l.message }));
    },
    async countAhead(job, now, excludeTypes) {
      const r = await pool.query<{ n: number }>(
        `SELECT count(*) AS n FROM jobs WHERE status = 'pending' AND run_at <= $1 AND type <> ALL ($2::text[])
           AND (priority > $3 OR (priority = $3 AND (run_at < $4 OR (run_at = $4 AND id < $5))))`,
        [ts(now), excludeTypes, job.priority, ts(job.runAt), job.id],
      );
      return r.rows[0]!.n;
    },
    async rescue({ now, liveOwners }) {
      // A job a gone daemon run left running goes back to pending with its attempt counted,
      // those handed to a worker ahead of their turn too (they may have begun): every attempt
      // number stands for one execution at most. A running job of a live owner is its own.
      // A zombie's later write of that attempt meets this row changed and is refused (fence).
      const r = await pool.query<{ status: JobStatus }>(`UPDATE jobs SET ${RESCUED("$1")} WHERE status = 'running' AND (owner IS NULL OR owner <> ALL ($2::text[])) RETURNING status`, [now, liveOwners]);
      const interrupted = r.rows.filter((x) => x.status === "pending").length;
      if (interrupted > 0) claimable();
      return { interrupted, cancelled: r.rows.length - interrupted };
    },
  };
}
