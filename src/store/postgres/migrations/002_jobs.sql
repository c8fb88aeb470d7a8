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

-- The claim (store/types.ts ClaimLimits), one call: due pending jobs of types not paused, in
-- claim order, at most n, each locked as it is read (FOR UPDATE SKIP LOCKED: a job another
-- claim holds is stepped over, never waited for nor taken twice). Each job draws one from
-- every budget its type draws on (draws ->> type, or other_types); the claim stops at the
-- first job that finds one used up, so no job behind it overtakes it. The jobs taken become
-- running for `claimer`, attempt counted, and are returned (in no order). When the claim
-- ran out of due jobs (it neither stopped nor filled n), a last row with id NULL gives in
-- next_due the earliest run_at among the pending jobs left (the others' columns are NULL).
--
-- Why a function, and these settings: the plans must not depend on statistics. A queue's
-- pending rows go from a few to 100,000 and back faster than ANALYZE follows; planned with
-- statistics from a quiet moment, or none on a fresh database, the read of due jobs took
-- every due row and sorted them (measured: 6 ms for 7,000 due jobs, against 0.15 ms walking
-- jobs_due), and a plan kept from when the table was small joined by scanning the whole
-- table. enable_sort = off leaves the planner one way to read due jobs: jobs_due in the order
-- asked for, stopping at the limit; enable_seqscan = off makes the update of the jobs taken
-- go by primary key, whatever size the table is thought to have. With their shape fixed,
-- the plans are made once per session (force_generic_plan: no planning per call).
CREATE FUNCTION jobs_claim(claimer text, due_by timestamptz, n integer, paused text[], budgets jsonb, draws jsonb, other_types jsonb)
  RETURNS TABLE (id bigint, type text, payload json, status text, progress integer, progress_message text,
                 attempts integer, max_attempts integer, run_at timestamptz, priority integer, unique_key text,
                 slot integer, result json, error text, errors json, created_at timestamptz, started_at timestamptz,
                 finished_at timestamptz, state json, next_due timestamptz)
  LANGUAGE plpgsql VOLATILE ROWS 10
  SET enable_sort = off SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
  #variable_conflict use_column
  DECLARE
    due record;
    budget_left jsonb := budgets;
    names text[];
    b text;
    taken bigint[] := '{}';
    seen integer := 0;
    stopped boolean := false;
  BEGIN
    <<walk>>
    FOR due IN
      SELECT j.id, j.type FROM jobs j
       WHERE j.status = 'pending' AND j.run_at <= due_by AND j.type <> ALL (paused)
       ORDER BY j.priority DESC, j.run_at, j.id
       LIMIT n
       FOR UPDATE SKIP LOCKED
    LOOP
      seen := seen + 1;
      names := ARRAY(SELECT jsonb_array_elements_text(CASE WHEN draws ? due.type THEN draws -> due.type ELSE other_types END));
      FOREACH b IN ARRAY names LOOP
        IF NOT coalesce((budget_left ->> b)::float8, 0) > 0 THEN
          stopped := true;
          EXIT walk;
        END IF;
      END LOOP;
      FOREACH b IN ARRAY names LOOP
        budget_left := jsonb_set(budget_left, ARRAY[b], to_jsonb(coalesce((budget_left ->> b)::float8, 0) - 1));
      END LOOP;
      taken := taken || due.id;
    END LOOP;
    -- By primary key (id = ANY: never a scan of the table), in no particular order.
    RETURN QUERY
      UPDATE jobs j SET status = 'running', slot = NULL, attempts = j.attempts + 1, started_at = NULL, owner = claimer,
             progress = 0, progress_message = NULL
       WHERE j.id = ANY (taken)
      RETURNING j.id, j.type, j.payload, j.status, j.progress, j.progress_message, j.attempts, j.max_attempts, j.run_at,
                j.priority, j.unique_key, j.slot, j.result, j.error, j.errors, j.created_at, j.started_at, j.finished_at,
                j.state, NULL::timestamptz;
    IF NOT stopped AND seen < n THEN
      next_due := (SELECT j.run_at FROM jobs j
                    WHERE j.status = 'pending' AND j.type <> ALL (paused) AND j.id <> ALL (taken)
                    ORDER BY j.run_at
                    LIMIT 1);
      RETURN NEXT;
    END IF;
  END
$$;
