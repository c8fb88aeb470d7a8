import type pg from "pg";
import { toScheduleRun, type ScheduleRunRow } from "../rows.js";
import type { Json } from "../../protocol/types.js";
import type { FireResult, JobRecord, MetaStore, ScheduleRecord, ScheduleStore } from "../types.js";
import { inTransaction, longWrite, PRUNE_STATEMENT_MS, ts, tsOrNull } from "./connect.js";
import type { Wakeups } from "./wakeups.js";
import { toJobRecord, type JobRow } from "./jobs.js";

interface Row {
  name: string;
  cron: string;
  timezone: string | null;
  job_type: string;
  payload: Json;
  enabled: boolean;
  last_slot: number | null;
  last_fired_at: number | null;
  last_job_id: number | null;
  last_outcome: "enqueued" | "skipped" | null;
  created_at: number;
  updated_at: number;
}

const toSchedule = (r: Row): ScheduleRecord => ({
  name: r.name,
  cron: r.cron,
  timezone: r.timezone,
  jobType: r.job_type,
  payload: r.payload,
  enabled: r.enabled,
  lastSlot: r.last_slot,
  lastFiredAt: r.last_fired_at,
  lastJobId: r.last_job_id,
  lastOutcome: r.last_outcome,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});


/** How often a firing tries again when its job was neither inserted nor found live (the live one ended in between). */
const FIRE_INSERT_TRIES = 3;

export function pgSchedules(pool: pg.Pool, wakeups?: Wakeups): ScheduleStore {
  const upsertSql = (onConflict: string) =>
    `INSERT INTO schedules (name, cron, timezone, job_type, payload, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5::json, $6, $6) ON CONFLICT (name) ${onConflict}`;
  return {
    async list() {
      return (await pool.query<Row>(`SELECT * FROM schedules ORDER BY name COLLATE "C"`)).rows.map(toSchedule);
    },
    async get(name) {
      const r = (await pool.query<Row>(`SELECT * FROM schedules WHERE name = $1`, [name])).rows[0];
      return r ? toSchedule(r) : null;
    },
    async upsert(s, now) {
      const r = await pool.query<Row>(
        upsertSql(`DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, job_type = excluded.job_type,
          payload = excluded.payload, updated_at = excluded.updated_at RETURNING *`),
        [s.name, s.cron, s.timezone, s.jobType, JSON.stringify(s.payload), ts(now)],
      );
      return toSchedule(r.rows[0]!);
    },
    async ensure(s, now) {
      await pool.query(upsertSql("DO NOTHING"), [s.name, s.cron, s.timezone, s.jobType, JSON.stringify(s.payload), ts(now)]);
    },
    async setEnabled(name, enabled, now, skipUntil) {
      // greatest() ignores nulls: no skipUntil keeps last_slot; a skipUntil only moves it forward.
      const r = await pool.query<Row>(
        `UPDATE schedules SET enabled = $2, updated_at = $3, last_slot = greatest(last_slot, $4::timestamptz) WHERE name = $1 RETURNING *`,
        [name, enabled, ts(now), tsOrNull(skipUntil)],
      );
      return r.rows[0] ? toSchedule(r.rows[0]) : null;
    },
    async remove(name) {
      return ((await pool.query(`DELETE FROM schedules WHERE name = $1`, [name])).rowCount ?? 0) > 0;
    },

    async fire(name, slot, now, job): Promise<FireResult | null> {
      const fired = await inTransaction(pool, async (c): Promise<FireResult | null> => {
        // The schedule's row is locked until commit: firings of one schedule, from any
        // daemon, take turns; the next one reads the lastSlot the previous one recorded.
        const row = (await c.query<Row & { store_now: number }>(`SELECT *, now() AS store_now FROM schedules WHERE name = $1 FOR UPDATE`, [name])).rows[0];
        if (!row) return null;
        if (slot !== null) {
          if (!row.enabled) return { outcome: "paused" };
          // The database's clock decides when a slot has come: every daemon of a team shares it.
          if (slot > row.store_now) return { outcome: "early", storeNow: row.store_now };
          if (row.last_slot !== null && slot <= row.last_slot) return { outcome: "already-fired" };
          // The slot's row decides, whatever else happened: one row per (schedule, slot), ever.
          const claimed = await c.query(`INSERT INTO schedule_runs (schedule, slot, fired_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [name, ts(slot), ts(now)]);
          if (claimed.rowCount === 0) return { outcome: "already-fired" };
        }
        let stored: JobRecord | undefined;
        let outcome: "enqueued" | "skipped" = "enqueued";
        for (let i = 0; i < FIRE_INSERT_TRIES && !stored; i++) {
          // A live job with the same unique key makes the insert do nothing (jobs_unique_live).
          const inserted = (
            await c.query<JobRow>(
              `INSERT INTO jobs (type, payload, status, max_attempts, run_at, priority, unique_key, created_at)
               VALUES ($1, $2::json, 'pending', $3, $4, $5, $6, $7)
               ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('pending', 'running') DO NOTHING RETURNING *`,
              [job.type, JSON.stringify(job.payload), job.maxAttempts, ts(job.runAt), job.priority, job.uniqueKey, ts(now)],
            )
          ).rows[0];
          if (inserted) {
            stored = toJobRecord(inserted);
            outcome = "enqueued";
            break;
          }
          // Several writers: the live job may have ended since the insert saw it; then try again.
          const live = (await c.query<JobRow>(`SELECT * FROM jobs WHERE unique_key = $1 AND status IN ('pending', 'running')`, [job.uniqueKey])).rows[0];
          if (live) {
            stored = toJobRecord(live);
            outcome = "skipped";
          }
        }
        if (!stored) throw new Error(`schedule ${name}: the job was neither inserted nor found live under its key`);
        if (slot !== null) {
          await c.query(`UPDATE schedule_runs SET outcome = $3, job_id = $4 WHERE schedule = $1 AND slot = $2`, [name, ts(slot), outcome, stored.id]);
        }
        await c.query(
          `UPDATE schedules SET last_slot = greatest(last_slot, $2::timestamptz), last_fired_at = $3, last_job_id = $4, last_outcome = $5 WHERE name = $1`,
          [name, tsOrNull(slot), ts(now), stored.id, outcome],
        );
        return { outcome, job: stored };
      });
      // Committed: the other daemons may claim the job it added.
      if (fired?.outcome === "enqueued") wakeups?.jobsClaimable();
      return fired;
    },

    async runs(name, limit = 100) {
      const r = await pool.query<ScheduleRunRow>(`SELECT * FROM schedule_runs WHERE schedule = $1 AND outcome IS NOT NULL ORDER BY slot DESC LIMIT $2`, [name, limit]);
      return r.rows.map(toScheduleRun);
    },
    async pruneRuns(firedBefore) {
      // Allowed longer than a statement's usual deadline (a prune): see connect.ts.
      return (await longWrite(pool, PRUNE_STATEMENT_MS, { text: `DELETE FROM schedule_runs WHERE fired_at < $1`, values: [ts(firedBefore)] })).rowCount ?? 0;
    },
  };
}

export function pgMeta(pool: pg.Pool): MetaStore {
  return {
    async get(key) {
      const r = (await pool.query<{ value: Json }>(`SELECT value FROM meta WHERE key = $1`, [key])).rows[0];
      return r ? r.value : null;
    },
    async set(key, value) {
      await pool.query(`INSERT INTO meta (key, value) VALUES ($1, $2::json) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, JSON.stringify(value)]);
    },
  };
}
