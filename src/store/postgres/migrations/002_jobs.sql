-- PROVISIONAL: the job queue's table, only as far as schedules.fire needs it (a firing
-- inserts a job, or finds the live one under its unique key). The queue on PostgreSQL
-- (claims, ownership, fencing: SCALE-OUT.md §9) is not built yet; until the PostgreSQL store
-- ships, whoever builds it may rewrite this migration rather than add one after it.
CREATE TABLE jobs (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type              text NOT NULL,
  payload           json NOT NULL,
  status            text NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed', 'cancelled')),
  progress          integer NOT NULL DEFAULT 0,
  progress_message  text,
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL,
  run_at            timestamptz NOT NULL,
  priority          integer NOT NULL DEFAULT 0,
  unique_key        text,
  slot              integer,
  result            json,
  error             text,
  errors            json NOT NULL DEFAULT '[]',
  created_at        timestamptz NOT NULL,
  started_at        timestamptz,
  finished_at       timestamptz,
  state             json
);
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id) WHERE status = 'pending';
-- One live (pending or running) job per unique key: the double-click guard, and a schedule's
-- no-overlap rule.
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('pending', 'running');
