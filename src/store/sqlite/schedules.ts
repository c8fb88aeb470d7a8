import type { Json } from "../../protocol/types.js";
import type { MetaStore, ScheduleRecord, ScheduleStore } from "../types.js";
import type { Db } from "./open.js";
import { jobInserter, toRecord, type Row as JobRow } from "./jobs.js";

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

/** The unique key that keeps two runs of one schedule from overlapping. */
export const scheduleKey = (name: string) => `schedule:${name}`;

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
  const findLive = db.prepare<[string], JobRow>(`SELECT * FROM jobs WHERE unique_key = ? AND status IN ('pending', 'running')`);
  const record = db.prepare(
    `UPDATE schedules SET last_slot = coalesce(@slot, last_slot), last_fired_at = @now, last_job_id = @jobId, last_outcome = @outcome WHERE name = @name`,
  );
  const insertJob = jobInserter(db);

  const fire = db.transaction((name: string, slot: number | null, now: number, job: Parameters<ScheduleStore["fire"]>[3]) => {
    const row = get.get(name);
    if (!row) return null;
    if (slot !== null && row.last_slot !== null && slot <= row.last_slot) return { outcome: "already-fired" as const };
    const key = scheduleKey(name);
    const live = findLive.get(key);
    if (live) {
      record.run({ slot, now, jobId: live.id, outcome: "skipped", name });
      return { outcome: "skipped" as const, job: toRecord(live) };
    }
    const inserted = insertJob({ ...job, uniqueKey: key }, now);
    record.run({ slot, now, jobId: inserted.id, outcome: "enqueued", name });
    return { outcome: "enqueued" as const, job: inserted };
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
