-- One row per slot a schedule handled, so that a slot is fired only once whoever tries (two
-- daemons on one store, a timer and a catch-up, a restart at that moment): a firing first
-- inserts its (schedule, slot) row with ON CONFLICT DO NOTHING, and only the one that inserted
-- it goes on. Pruned by housekeeping after the jobs' retention; a pruned slot stays refused,
-- being at or before schedules.last_slot.
CREATE TABLE schedule_runs (
  schedule  TEXT NOT NULL REFERENCES schedules(name) ON DELETE CASCADE,
  slot      INTEGER NOT NULL,
  fired_at  INTEGER NOT NULL,
  -- Null only inside the firing's own transaction, which sets both before it commits.
  outcome   TEXT CHECK (outcome IN ('enqueued', 'skipped')),
  job_id    INTEGER,
  PRIMARY KEY (schedule, slot)
) STRICT, WITHOUT ROWID;
CREATE INDEX schedule_runs_fired_at ON schedule_runs (fired_at);
