-- The job queue: the same rows as the SQLite store's jobs and job_logs (src/store/sqlite/
-- migrations 001, 002, 005, 007), in PostgreSQL's types, shared by every daemon of a team.
-- Statements: src/store/postgres/jobs.ts. Documents (payload, result, state, errors) are json,
-- not jsonb, so that they come back exactly as written (key order included), as from SQLite.

CREATE TABLE jobs (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type              text NOT NULL,
  payload           json NOT NULL,
  status            text NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed', 'cancelled')),
  progress          integer NOT NULL DEFAULT 0,
  progress_message  text,
  -- The attempt being run or last run: +1 on every claim. With owner, the fence of every
  -- write an attempt makes (finish, progress, checkpoint, log, begin).
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
  -- The handler's last checkpoint, kept across attempts.
  state             json,
  -- The daemon run that claimed the job, while it runs.
  owner             text
) WITH (fillfactor = 90,
        autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);

-- The claim's order (priority DESC, run_at, id) over pending jobs: the claim walks it with
-- FOR UPDATE SKIP LOCKED.
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id) WHERE status = 'pending';
-- The earliest pending job (nextDueAt).
CREATE INDEX jobs_pending_run_at ON jobs (run_at) WHERE status = 'pending';
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_type ON jobs (type, id);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- One live (pending or running) job per unique key: the double-click guard, and a schedule's
-- no-overlap rule. Inserts say ON CONFLICT ... DO NOTHING against it.
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('pending', 'running');

-- A running attempt's log lines, the newest 200 per job kept (jobs.ts).
CREATE TABLE job_logs (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id    bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt   integer NOT NULL,
  at        timestamptz NOT NULL,
  message   text NOT NULL
);
CREATE INDEX job_logs_job ON job_logs (job_id, id);

-- A json array with one element appended, the elements before it kept as written (SQLite's
-- json_insert(arr, '$[#]', elem)); jsonb's || would reorder the keys of every element.
CREATE FUNCTION json_append(arr json, elem json) RETURNS json
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT json_agg(v ORDER BY n)
      FROM (SELECT v, n FROM json_array_elements(arr) WITH ORDINALITY AS e (v, n)
            UNION ALL SELECT elem, 9223372036854775807) AS x
  $$;

-- The two reads of the claim whose plan must not depend on statistics. A queue's pending
-- rows go from a few to 100,000 and back faster than ANALYZE follows: planned with
-- statistics from a quiet moment (or none, on a fresh database), the claim read every due
-- row and sorted them (measured: 6 ms for 7,000 due jobs, against 0.15 ms walking jobs_due).
-- enable_sort = off leaves the planner one way: the index in the order asked for, stopping
-- at the limit. PL/pgSQL, not SQL: a function with a SET clause is never inlined, and
-- PL/pgSQL keeps its plans for the session where SQL plans each call again (+0.5 ms).

-- Due pending jobs of types not paused, in claim order, at most n, locked for the caller;
-- one another transaction holds is skipped (SKIP LOCKED), never waited for.
CREATE FUNCTION jobs_lock_due(due_by timestamptz, n bigint, paused text[])
  RETURNS TABLE (id bigint, type text, priority integer, run_at timestamptz)
  LANGUAGE plpgsql VOLATILE ROWS 10 SET enable_sort = off AS $$
  BEGIN
    RETURN QUERY
      SELECT j.id, j.type, j.priority, j.run_at FROM jobs j
       WHERE j.status = 'pending' AND j.run_at <= due_by AND j.type <> ALL (paused)
       ORDER BY j.priority DESC, j.run_at, j.id
       LIMIT n
       FOR UPDATE SKIP LOCKED;
  END
$$;

-- The earliest run_at among pending jobs of types not paused, those in `taken` left out.
CREATE FUNCTION jobs_next_due(paused text[], taken bigint[])
  RETURNS timestamptz
  LANGUAGE plpgsql STABLE SET enable_sort = off AS $$
  BEGIN
    RETURN (SELECT j.run_at FROM jobs j
             WHERE j.status = 'pending' AND j.type <> ALL (paused) AND j.id <> ALL (taken)
             ORDER BY j.run_at
             LIMIT 1);
  END
$$;
