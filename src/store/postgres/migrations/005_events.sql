-- Job events on PostgreSQL: every daemon on the database, and every process writing through
-- the store, is a source of job events (a status change, coalesced progress, a log line), so
-- the database keeps them, and each daemon's event streams read them back in one order that
-- every daemon shares (src/store/postgres/events.ts). A watcher can then follow a job that
-- runs on another daemon, and resume on any daemon where it stopped.
--
-- The rows are written by triggers, in the statement that makes the change: no statement
-- (the claim function, a rescue, a write another part of the store adds later) can change a
-- job's status without its event, and an event is never written for a change that rolled back.

-- One row per event. The order is (xid, id), read only below the oldest transaction still in
-- progress (pg_snapshot_xmin of the reader's snapshot), so a transaction that commits late is
-- never stepped over: SCALE-OUT.md §9.4.
--
-- xid: the writing transaction's id; for a change out of a state other than running (a
-- claim, a retry, a cancel of a pending job) raised to the newest key in the table where that
-- is greater, so at least to the key of the job's own newest event. The raise keeps a job's
-- events in the order they happened: a transaction that took its id before another one
-- committed (a tick that wrote something, then claims a job that a schedule or another daemon
-- enqueued meanwhile) would otherwise sort before the change it follows. A key is never lower
-- than its transaction's id, so the reader's rule still holds. (Changes out of running are
-- the owner's, whose earlier events committed before its transaction began; a rescue racing a
-- zombie's last write is the exception, and that late write is of an attempt that is over.)
--
-- Columns, not a json document: a status event is the job's changing fields (the reader
-- takes type, priority, unique key and creation time, which never change, from the job);
-- building a json head per event doubled the trigger's cost per row. No foreign key to jobs
-- (a key check per event): a job's events are deleted with it by trigger instead.
CREATE TABLE job_events (
  xid           xid8 NOT NULL,
  id            bigint GENERATED ALWAYS AS IDENTITY,
  job_id        bigint NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('status', 'progress', 'log')),
  -- status and progress: the job's attempts; log: the line's attempt.
  attempt       integer NOT NULL,
  -- status only.
  status        text,
  max_attempts  integer,
  slot          integer,
  error         text,
  run_at        timestamptz,
  started_at    timestamptz,
  finished_at   timestamptz,
  -- status and progress.
  progress      integer,
  -- status and progress: the progress message; log: the line.
  message       text,
  -- log only: the line's id in job_logs.
  line_id       bigint,
  -- When it was written (a log line: when it was logged).
  at            timestamptz NOT NULL DEFAULT statement_timestamp(),
  PRIMARY KEY (xid, id)
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000);
-- One job's events in order: a job's stream catching up, deletes with the job.
CREATE INDEX job_events_job ON job_events (job_id, xid, id);

-- The one row that says what a cursor is checked against: tag names this database in every
-- cursor (a cursor of another database, or of this one dropped and made again, is refused
-- rather than read as a position here); every event at or before (pruned_xid, pruned_id) was
-- pruned by age, so a cursor before it cannot be resumed.
CREATE TABLE job_event_log (
  only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  tag         text NOT NULL,
  pruned_xid  xid8 NOT NULL DEFAULT '0',
  pruned_id   bigint NOT NULL DEFAULT 0
);
INSERT INTO job_event_log (tag) VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 8));

-- The triggers are statement-level with transition tables: one INSERT of events per statement
-- that changes jobs (a batch of 1,000 new jobs is one INSERT of 1,000 events). Their plans are
-- made once per session (force_generic_plan; the pool's sessions plan every statement afresh),
-- and old and new rows are joined by hash, whatever the planner guesses of their number. The
-- events of one statement take ids in the order its rows were written (a transition table is
-- read in that order; no sort): a job's log lines keep their order, as do a batch's new jobs.

-- New jobs: one status event each. A new job has no earlier event to follow.
CREATE FUNCTION job_events_inserted() RETURNS trigger
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
  BEGIN
    INSERT INTO job_events (xid, job_id, kind, attempt, status, max_attempts, slot, error, run_at, started_at, finished_at, progress, message)
      SELECT pg_current_xact_id(), n.id, 'status', n.attempts, n.status, n.max_attempts, n.slot, n.error, n.run_at,
             n.started_at, n.finished_at, n.progress, n.progress_message
        FROM new_jobs n;
    RETURN NULL;
  END
$$;
CREATE TRIGGER job_events_inserted AFTER INSERT ON jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION job_events_inserted();

-- Changed jobs: a status event where status, attempt or slot changed (claimed, its turn begun
-- in a slot, finished, retried, requeued, rescued, cancelled); a progress event where only a
-- running job's progress or message did (the engine writes progress coalesced: at most one
-- write per job per 250 ms). Other changes (a checkpoint) make none. (A trigger with transition
-- tables cannot name columns: every UPDATE of jobs runs it.)
CREATE FUNCTION job_events_updated() RETURNS trigger
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_nestloop = off AS $$
  DECLARE
    newest xid8;
  BEGIN
    -- The raise: the newest key of any event this statement can see (one probe of the
    -- primary key per statement). A per-job lookup (each job's newest event) cost an index
    -- probe per row and made a drain's events half again as dear; any key at least as new as
    -- the job's own newest event keeps the job's order.
    newest := (SELECT e.xid FROM job_events e ORDER BY e.xid DESC, e.id DESC LIMIT 1);
    INSERT INTO job_events (xid, job_id, kind, attempt, status, max_attempts, slot, error, run_at, started_at, finished_at, progress, message)
      SELECT CASE WHEN o.status = 'running' THEN pg_current_xact_id()
               ELSE greatest(pg_current_xact_id(), newest) END,
             n.id, k.kind, n.attempts,
             CASE WHEN k.status THEN n.status END, CASE WHEN k.status THEN n.max_attempts END, CASE WHEN k.status THEN n.slot END,
             CASE WHEN k.status THEN n.error END, CASE WHEN k.status THEN n.run_at END, CASE WHEN k.status THEN n.started_at END,
             CASE WHEN k.status THEN n.finished_at END, n.progress, n.progress_message
        FROM new_jobs n JOIN old_jobs o ON o.id = n.id
       CROSS JOIN LATERAL (SELECT (n.status, n.attempts, n.slot) IS DISTINCT FROM (o.status, o.attempts, o.slot) AS status) s
       CROSS JOIN LATERAL (SELECT s.status,
              CASE WHEN s.status THEN 'status'
                   WHEN n.status = 'running' AND (n.progress, n.progress_message) IS DISTINCT FROM (o.progress, o.progress_message) THEN 'progress'
              END AS kind) k
       WHERE k.kind IS NOT NULL;
    RETURN NULL;
  END
$$;
CREATE TRIGGER job_events_updated AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION job_events_updated();

-- A deleted (pruned) job's events go with it.
CREATE FUNCTION job_events_deleted() RETURNS trigger
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
  BEGIN
    DELETE FROM job_events e USING old_jobs o WHERE e.job_id = o.id;
    RETURN NULL;
  END
$$;
CREATE TRIGGER job_events_deleted AFTER DELETE ON jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION job_events_deleted();

-- A running attempt's log lines, one event each (line_id: the line's id in job_logs).
CREATE FUNCTION job_events_logged() RETURNS trigger
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
  BEGIN
    INSERT INTO job_events (xid, job_id, kind, attempt, message, line_id, at)
      SELECT pg_current_xact_id(), n.job_id, 'log', n.attempt, n.message, n.id, n.at FROM new_lines n;
    RETURN NULL;
  END
$$;
CREATE TRIGGER job_events_logged AFTER INSERT ON job_logs
  REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION job_events_logged();
