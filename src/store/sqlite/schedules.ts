import type { Json } from "../../protocol/types.js";
import { toScheduleRun, type ScheduleRunRow } from "../rows.js";
import type { FireResult, MetaStore, NewJob, ScheduleRecord, ScheduleStore } from "../types.js";
import type { Db } from "./open.js";
import { toRecord, type Row as JobRow } from "./jobs.js";

interface Row {
  name: string;
  cron: string;
  timezone: string | null;
  job_type: string;
  payload: string;
  enabled: number;
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
  payload: JSON.parse(r.payload) as Json,
  enabled: r.enabled === 1,
  lastSlot: r.last_slot,
  lastFiredAt: r.last_fired_at,
  lastJobId: r.last_job_id,
  lastOutcome: r.last_outcome,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});


export function sqliteSchedules(db: Db): ScheduleStore {
  const list = db.prepare<[], Row>(`SELECT * FROM schedules ORDER BY name`);
  const get = db.prepare<[string], Row>(`SELECT * FROM schedules WHERE name = ?`);
  const upsert = db.prepare(
    `INSERT INTO schedules (name, cron, timezone, job_type, payload, created_at, updated_at)
     VALUES (@name, @cron, @timezone, @jobType, @payload, @now, @now)
     ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, job_type = excluded.job_type,
       payload = excluded.payload, updated_at = excluded.updated_at`,
  );
  const ensure = db.prepare(
    `INSERT INTO schedules (name, cron, timezone, job_type, payload, created_at, updated_at)
     VALUES (@name, @cron, @timezone, @jobType, @payload, @now, @now) ON CONFLICT (name) DO NOTHING`,
  );
  const setEnabled = db.prepare<[{ enabled: number; now: number; skipUntil: number | null; name: string }], Row>(
    `UPDATE schedules SET enabled = @enabled, updated_at = @now,
       last_slot = CASE WHEN @skipUntil IS NULL THEN last_slot ELSE max(coalesce(last_slot, @skipUntil), @skipUntil) END
     WHERE name = @name RETURNING *`,
  );
  const remove = db.prepare<[string]>(`DELETE FROM schedules WHERE name = ?`);
  // The first to insert a slot's row wins it; the unique key does the deciding, not a read.
  const claimSlot = db.prepare<[{ name: string; slot: number; now: number }]>(
    `INSERT INTO schedule_runs (schedule, slot, fired_at) VALUES (@name, @slot, @now) ON CONFLICT DO NOTHING`,
  );
  const settleRun = db.prepare<[{ name: string; slot: number; outcome: string; jobId: number }]>(
    `UPDATE schedule_runs SET outcome = @outcome, job_id = @jobId WHERE schedule = @name AND slot = @slot`,
  );
  // A live job with the same unique key makes the insert do nothing (jobs_unique_live).
  const insertJob = db.prepare<[{ type: string; payload: string; maxAttempts: number; runAt: number; priority: number; uniqueKey: string | null; now: number }], JobRow>(
    `INSERT INTO jobs (type, payload, status, max_attempts, run_at, priority, unique_key, created_at)
     VALUES (@type, @payload, 'pending', @maxAttempts, @runAt, @priority, @uniqueKey, @now) ON CONFLICT DO NOTHING RETURNING *`,
  );
  const findLive = db.prepare<[string], JobRow>(`SELECT * FROM jobs WHERE unique_key = ? AND status IN ('pending', 'running')`);
  const record = db.prepare(
    `UPDATE schedules SET last_slot = CASE WHEN @slot IS NULL THEN last_slot ELSE max(coalesce(last_slot, @slot), @slot) END,
       last_fired_at = @now, last_job_id = @jobId, last_outcome = @outcome WHERE name = @name`,
  );
  const runs = db.prepare<[string, number], ScheduleRunRow>(`SELECT * FROM schedule_runs WHERE schedule = ? AND outcome IS NOT NULL ORDER BY slot DESC LIMIT ?`);
  const pruneRuns = db.prepare<[number]>(`DELETE FROM schedule_runs WHERE fired_at < ?`);

  const fire = db.transaction((name: string, slot: number | null, now: number, job: NewJob): FireResult | null => {
    const row = get.get(name);
    if (!row) return null;
    if (slot !== null) {
      if (!row.enabled) return { outcome: "paused" };
      if (row.last_slot !== null && slot <= row.last_slot) return { outcome: "already-fired" };
      if (claimSlot.run({ name, slot, now }).changes === 0) return { outcome: "already-fired" };
    }
    const inserted = insertJob.get({ ...job, payload: JSON.stringify(job.payload), now });
    // With one writer, an insert that did nothing means the live job is there to be read.
    const live = inserted ? undefined : job.uniqueKey === null ? undefined : findLive.get(job.uniqueKey);
    if (!inserted && !live) throw new Error(`schedule ${name}: the job was neither inserted nor found live under its key`);
    const outcome = inserted ? "enqueued" : "skipped";
    const stored = toRecord((inserted ?? live)!);
    if (slot !== null) settleRun.run({ name, slot, outcome, jobId: stored.id });
    record.run({ slot, now, jobId: stored.id, outcome, name });
    return { outcome, job: stored };
  });

  return {
    async list() {
      return list.all().map(toSchedule);
    },
    async get(name) {
      const r = get.get(name);
      return r ? toSchedule(r) : null;
    },
    async upsert(s, now) {
      upsert.run({ ...s, payload: JSON.stringify(s.payload), now });
      return toSchedule(get.get(s.name)!);
    },
    async ensure(s, now) {
      ensure.run({ ...s, payload: JSON.stringify(s.payload), now });
    },
    async setEnabled(name, enabled, now, skipUntil) {
      const r = setEnabled.get({ enabled: enabled ? 1 : 0, now, skipUntil, name });
      return r ? toSchedule(r) : null;
    },
    async remove(name) {
      return remove.run(name).changes > 0;
    },
    async fire(name, slot, now, job) {
      return fire.immediate(name, slot, now, job);
    },
    async runs(name, limit = 100) {
      return runs.all(name, limit).map(toScheduleRun);
    },
    async pruneRuns(firedBefore) {
      return pruneRuns.run(firedBefore).changes;
    },
  };
}

export function sqliteMeta(db: Db): MetaStore {
  const get = db.prepare<[string], { value: string }>(`SELECT value FROM meta WHERE key = ?`);
  const set = db.prepare<[string, string]>(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
  return {
    async get(key) {
      const r = get.get(key);
      return r ? (JSON.parse(r.value) as Json) : null;
    },
    async set(key, value) {
      set.run(key, JSON.stringify(value));
    },
  };
}
