-- Job events only while someone watches (issue 14). The triggers of migration 005 cost a
-- drain about a third more server CPU per job, watched or not. Now each process whose event
-- streams follow the store (a daemon with watchers, for as long as it keeps recording after
-- the last one leaves) holds a row in job_event_watchers, renewed under a lease; the triggers
-- write events only while there is such a row anywhere, and do nothing else otherwise.
--
-- What a watcher is promised stays: no gap and no duplicate on resume, or an explicit reset.
-- While nobody watched, events were not written; so when watching starts again, the log is
-- marked as complete only from a point after which every write has its events
-- (job_event_log.recorded_from), and a cursor before that point is answered reset, as one
-- before what pruning kept is. Statements: src/store/postgres/events.ts.
--
-- Why a table read in the trigger rather than a setting each daemon sets per transaction from
-- its cached view: the read is one row of one page per statement (not per row), and its
-- answer follows commit order, which is what makes the mark below exact; a cached view is
-- stale by up to its refresh, so a daemon that had not yet heard of a new watcher would write
-- nothing, and the mark would have to wait for every node, and every process writing
-- through the store, to say it had heard.

-- One row per process with watchers; a row whose lease lapsed (its process died or stalled)
-- is swept by any node's rescue, or by any watcher's renewal.
CREATE TABLE job_event_watchers (
  id           text PRIMARY KEY,
  lease_until  timestamptz NOT NULL
);

-- recording: some row of job_event_watchers exists (kept by the trigger below; the only
-- thing the event triggers read). recorded_from: the log is complete from (recorded_from, 0)
-- on, while recording; null for the moment between watching starting and the mark being
-- taken. A database migrated here starts not recording, so that no cursor of before resumes
-- across the change.
ALTER TABLE job_event_log ADD COLUMN recording boolean NOT NULL DEFAULT false;
ALTER TABLE job_event_log ADD COLUMN recorded_from xid8;

-- The mark, and why it is exact. The triggers run in the writing statement, after its
-- transaction took its id, and (READ COMMITTED: the store's writes) read `recording` in a
-- snapshot of their own. A write that read "not recording" did so before the flip to
-- recording committed, so its transaction's id was taken before then, and so was every key it
-- would have written (a raised key is another event's key, which is older still). The mark is
-- the id of a transaction that begins after the flip committed (events.ts: the second
-- statement of watch()), so every transaction at or past the mark writes all its events, and
-- every event a write skipped sorts before the mark. The flip sets recorded_from to null;
-- readers answer reset while it is null (only a reader whose watch was lost reads then: a
-- watch always ends with the mark taken), and the first watcher to see null takes the mark.

-- Flips `recording` to match the table, one change at a time: the row lock is taken before
-- looking, and the look is a statement of its own (a snapshot taken once the lock is had), so
-- the last to flip saw every change committed before it: a watcher arriving and the last one
-- leaving at the same moment never leave the flag off under a watcher. Row-level: only rows
-- that really come or go (a sweep that finds nothing expired changes nothing).
CREATE FUNCTION job_event_watchers_changed() RETURNS trigger
  LANGUAGE plpgsql AS $$
  DECLARE
    watched boolean;
  BEGIN
    PERFORM 1 FROM job_event_log WHERE only_row FOR UPDATE;
    watched := EXISTS (SELECT 1 FROM job_event_watchers);
    UPDATE job_event_log SET recording = watched, recorded_from = CASE WHEN watched THEN NULL ELSE recorded_from END
     WHERE recording <> watched;
    RETURN NULL;
  END
$$;
CREATE TRIGGER job_event_watchers_changed AFTER INSERT OR DELETE ON job_event_watchers
  FOR EACH ROW EXECUTE FUNCTION job_event_watchers_changed();

-- The event triggers of 005, each now first asking whether anyone watches (one row, read
-- once per statement, by its primary key: a trigger fired inside jobs_claim inherits its
-- enable_seqscan = off, and a sequential scan's cost was then so high that the server
-- compiled the look-up with JIT at every call, 40-150 ms each: a drain nobody watched cost
-- twice the database CPU it does without triggers). Otherwise unchanged. The delete trigger is unchanged: a
-- pruned job's events go with it, whenever they were written.
CREATE OR REPLACE FUNCTION job_events_inserted() RETURNS trigger
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
  BEGIN
    IF NOT (SELECT l.recording FROM job_event_log l WHERE l.only_row) THEN
      RETURN NULL;
    END IF;
    INSERT INTO job_events (xid, job_id, kind, attempt, status, max_attempts, slot, error, run_at, started_at, finished_at, progress, message)
      SELECT pg_current_xact_id(), n.id, 'status', n.attempts, n.status, n.max_attempts, n.slot, n.error, n.run_at,
             n.started_at, n.finished_at, n.progress, n.progress_message
        FROM new_jobs n;
    RETURN NULL;
  END
$$;

CREATE OR REPLACE FUNCTION job_events_updated() RETURNS trigger
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_nestloop = off AS $$
  DECLARE
    newest xid8;
  BEGIN
    IF NOT (SELECT l.recording FROM job_event_log l WHERE l.only_row) THEN
      RETURN NULL;
    END IF;
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

CREATE OR REPLACE FUNCTION job_events_logged() RETURNS trigger
  LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
  BEGIN
    IF NOT (SELECT l.recording FROM job_event_log l WHERE l.only_row) THEN
      RETURN NULL;
    END IF;
    INSERT INTO job_events (xid, job_id, kind, attempt, message, line_id, at)
      SELECT pg_current_xact_id(), n.job_id, 'log', n.attempt, n.message, n.id, n.at FROM new_lines n;
    RETURN NULL;
  END
$$;
