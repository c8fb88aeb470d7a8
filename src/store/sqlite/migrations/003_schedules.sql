-- Named cron schedules run by the daemon, and a small key/value table for state that is
-- not a job (cleanup totals, the digest cursor).

CREATE TABLE schedules (
  name           TEXT PRIMARY KEY,
  cron           TEXT NOT NULL,
  timezone       TEXT,
  job_type       TEXT NOT NULL,
  payload        TEXT NOT NULL DEFAULT '{}',
  enabled        INTEGER NOT NULL DEFAULT 1,
  -- The scheduled time of the last slot handled (fired or skipped): a slot at or before it
  -- never fires again, across restarts.
  last_slot      INTEGER,
  last_fired_at  INTEGER,
  last_job_id    INTEGER,
  last_outcome   TEXT CHECK (last_outcome IN ('enqueued', 'skipped')),
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE meta (
  key    TEXT PRIMARY KEY,
  value  TEXT NOT NULL
) STRICT;
